"""JWT subjects map to owner names one to one (issue 10 item 5): owner names hold 64 characters, subjects more."""

from __future__ import annotations

import base64
import hashlib

from server.auth import subject_user_name


def test_short_subjects_keep_their_names():
    assert subject_user_name("user-1") == "user-1"
    assert subject_user_name("x" * 64) == "x" * 64


def test_long_subjects_become_distinct_digests_that_fit():
    prefix = "p" * 64
    a, b = subject_user_name(prefix + "a"), subject_user_name(prefix + "b")
    assert a != b and len(a) <= 64 and len(b) <= 64
    assert a == subject_user_name(prefix + "a")  # stable: the same subject is the same owner on every request
    assert prefix not in a


def test_a_subject_that_looks_like_a_digest_cannot_impersonate_one():
    long_subject = "q" * 100
    digest_name = subject_user_name(long_subject)
    # A short subject spelled exactly like that digest is itself digested, so it names another owner.
    assert subject_user_name(digest_name) != digest_name


def test_long_subjects_map_to_the_documented_digest_form():
    # sub~sha256~ + unpadded base64url SHA-256 of the whole subject (54 characters). The mapping names stored owners,
    # so it must stay exactly this across releases: any other spelling would orphan every long-subject tenant.
    for n in range(300):
        subject = f"https://idp.example.org/users/{n:04d}/" + "s" * 40
        digest = base64.urlsafe_b64encode(hashlib.sha256(subject.encode()).digest()).decode().removesuffix("=")
        name = subject_user_name(subject)
        assert name == "sub~sha256~" + digest and len(name) == 54, subject
        assert "=" not in name
