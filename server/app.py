"""build_server(settings): the MCP assembly. Registers the enabled toolsets, resources, prompts and completions.

``UniverseMCPServer`` overrides ``call_tool``: the single place where every tool call is guarded (size, depth,
unknown arguments), timed, and where every failure becomes the structured error envelope (server/errors.py).
"""

from __future__ import annotations

import contextvars
import gc
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedResourceError,
    UnexpectedToolError,
)
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_REQUEST,
    CallToolResult,
    CompleteRequestParams,
    CompleteResult,
    Completion,
)
from pydantic import ValidationError

from core.settings import Settings
from core.wiring import AppState
from providers.base import MarketDataProvider
from server import dashboard, errors, output_schemas, sdk
from server.auth import auth_settings, build_verifier
from server.lifespan import open_app_state
from server.version import __version__
from services import screening, telemetry
from services.errors import InvalidArgument, NotFound, UniverseMCPError
from storage.repositories import universes as universe_repo
from tools import ALL_TOOLSETS
from tools._deps import admit, resolve_caller
from tools._toolset import Toolset, ToolSpec, describe

__all__ = ["UniverseMCPServer", "build_server"]

# What holds for every toolset; each enabled toolset adds its own lines (Toolset.instructions, build_instructions).
INSTRUCTIONS = """\
Universe MCP manages investment universes: named lists of securities you own, with validated symbols and history.
Every tool returns {success, data, message, next_actions, metadata}; on failure data is null and
error {code, message, hint, details} says what went wrong and how to fix it. next_actions are ready-to-make calls."""

# The SDK wraps every Resolve()d dependency (our Deps) in AcceptedElicitation[Any]. pydantic keeps parametrised
# generics in a weak-valued cache, so without a strong reference the class is collected and rebuilt (about 0.5 ms)
# every few dozen calls: a p99 spike on every tool call. Holding it here makes the cache hit every time.
_RESOLVED_DEPENDENCY = AcceptedElicitation[Any]


class UniverseMCPServer(MCPServer[AppState]):
    """MCPServer with one guarded entry point for tool calls."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.universe_settings = settings
        self.specs: dict[str, ToolSpec] = {}
        # The process's state once the lifespan has opened it (HTTP routes such as /readyz read it).
        self.app_state: AppState | None = None

    @property
    def tool_names(self) -> set[str]:
        return set(self.specs)

    async def _admit(self, spec: ToolSpec, context: Context[AppState, Any] | None) -> None:
        if context is None:  # a direct in-process call (no request): nothing to admit
            return
        state: AppState = context.request_context.lifespan_context
        await admit(state, spec.name, (spec.scope,))

    async def read_resource(self, uri: Any, context: Context[AppState, Any] | None = None) -> Any:
        """Every resource (universe://, assets.csv, jobs://, the dashboard View) is admitted like a read tool, and
        logged and counted like a tool call (by its URI template: the URI itself holds ids)."""
        started = time.perf_counter()
        token = _bind_request_id()
        code: str | None = "internal"
        try:
            if context is not None:
                await _admit_request(context.request_context.lifespan_context, "resources/read", str(uri))
            result = await _read_mapped(super().read_resource(uri, context))
            code = None
            return result
        except ResourceNotFoundError:
            code = "not_found"
            raise
        except MCPError as exc:  # admission refused: the error code travels in the JSON-RPC error's data
            data = exc.error.data
            code = (data.get("code") if isinstance(data, dict) else None) or "internal"
            raise
        finally:
            _observe_resource(self, str(uri), code, started, context)
            telemetry.REQUEST_ID.reset(token)

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[AppState, Any] | None = None
    ) -> Any:
        """Prompts are admitted like read tools (scope and per-owner rate limit)."""
        if context is not None:
            await _admit_request(context.request_context.lifespan_context, "prompts/get", name)
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> CallToolResult:
        """Every tool call: guarded and mapped to an envelope (_guarded_call), then logged and counted once."""
        started = time.perf_counter()
        token = _bind_request_id()
        result: CallToolResult | None = None
        try:
            result = await self._guarded_call(name, arguments, context, started)
            return result
        finally:
            _observe_tool(self, name, result, started, context)
            telemetry.REQUEST_ID.reset(token)

    async def _guarded_call(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None, started: float
    ) -> CallToolResult:

        def failed(error: UniverseMCPError) -> CallToolResult:
            return errors.error_result(error, registered=self.specs, elapsed_ms=(time.perf_counter() - started) * 1000)

        tool = sdk.get_tool(self, name)
        if tool is None or name not in self.specs:
            return failed(errors.unknown_tool_error(name, self.specs))
        problem = errors.arguments_problem(
            arguments,
            allowed=set(tool.parameters.get("properties", {})),
            max_depth=self.universe_settings.max_json_depth,
            max_bytes=self.universe_settings.max_request_bytes,
        )
        if problem is not None:
            return failed(problem)
        try:
            await self._admit(self.specs[name], context)
        except UniverseMCPError as exc:
            return failed(exc)
        try:
            result = await self._run_tool(tool, name, arguments, context)
        except UnexpectedToolError as exc:
            return failed(errors.from_exception(_root_cause(exc), tool=name))
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                return failed(errors.validation_error(cause, tool=name))
            if isinstance(cause, UniverseMCPError):
                return failed(cause)
            return failed(InvalidArgument(str(exc)[:500]))
        if isinstance(result, dict):
            envelope = result
        elif not isinstance(result, CallToolResult) or result.structured_content is None:
            return result
        else:
            envelope = dict(result.structured_content)
        envelope["next_actions"] = errors.next_action_filter(envelope.get("next_actions", []), self.tool_names)
        envelope["metadata"] = {
            **envelope.get("metadata", {}),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        envelope.pop("error", None)
        return errors.render_result(envelope, is_error=False)

    async def _run_tool(
        self, tool: Any, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None
    ) -> Any:
        """The tool's envelope as a JSON-ready dict (anything else as the SDK converts it).

        Same validation and dump as the SDK's own conversion, minus the indented JSON text it would also render
        for every result: call_tool renders the text itself, from the final envelope.
        """
        if context is None:  # a direct in-process call: the SDK builds the context
            return await super().call_tool(name, arguments, context)
        raw = await sdk.call_tool_raw(self, name, arguments, context)
        metadata = tool.fn_metadata
        try:
            if type(raw) is metadata.output_model and not metadata.wrap_output and metadata.output_schema is not None:
                # The declared model itself: the SDK's validation of an instance returns it unchanged.
                return raw.model_dump(mode="json", by_alias=True)
            return metadata.convert_result(raw)
        except MCPError:
            raise
        except Exception as exc:  # as Tool.run reports a failed conversion
            raise UnexpectedToolError(f"Error executing tool {name}") from exc


async def _read_mapped(read: Any) -> Any:
    """A resource read, its domain errors mapped for every resource alike: what does not exist for the caller (or
    an id that cannot be one) is not found, any other refusal a resource error with the error's message."""
    try:
        return await read
    except UnexpectedResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, (NotFound, InvalidArgument)):
            raise ResourceNotFoundError(cause.message) from None
        if isinstance(cause, UniverseMCPError):
            raise ResourceError(cause.message) from None
        raise


def _bind_request_id() -> contextvars.Token[str | None]:
    # The HTTP edge may have set one already (X-Request-Id, server/metrics.py); a call keeps it, else gets its own.
    return telemetry.REQUEST_ID.set(telemetry.REQUEST_ID.get() or telemetry.new_request_id())


def _owner(context: Context[AppState, Any] | None) -> str | None:
    if context is None:
        return None
    try:
        return telemetry.owner_digest(resolve_caller(context.request_context.lifespan_context).owner_id)
    except Exception:  # no caller (refused before admission): logged without an owner
        return None


def _rpc_id(context: Context[AppState, Any] | None) -> Any:
    try:
        return context.request_id if context is not None else None
    except Exception:  # outside a request
        return None


def _observe_tool(
    server: UniverseMCPServer,
    name: str,
    result: CallToolResult | None,
    started: float,
    context: Context[AppState, Any] | None,
) -> None:
    """The call's log line and metrics. Unknown tool names count as ``unknown`` (labels stay a closed set)."""
    elapsed = time.perf_counter() - started
    code: str | None = "internal"  # no result: the call was cancelled or crashed past every handler
    envelope: dict[str, Any] = {}
    if result is not None:
        envelope = result.structured_content or {}
        code = ((envelope.get("error") or {}).get("code") or "internal") if result.is_error else None
    outcome = telemetry.outcome_label(code)
    tool = name if name in server.specs else "unknown"
    telemetry.record_tool_call(tool, outcome, elapsed)
    if not telemetry.logger.isEnabledFor(logging.INFO):  # the owner digest costs a hash: only when logged
        return
    telemetry.event(
        "tool_call",
        f"tool {tool} {outcome} in {elapsed * 1000:.1f} ms",
        tool=tool,
        owner=_owner(context),
        outcome=outcome,
        elapsed_ms=round(elapsed * 1000, 3),
        rpc_id=_rpc_id(context),
        job_id=_job_id(envelope),
    )


def _job_id(envelope: dict[str, Any]) -> str | None:
    """The job a call started or followed, so its line can be matched with the job's own line."""
    for part in (envelope.get("metadata"), envelope.get("data")):
        if isinstance(part, dict) and isinstance(part.get("job_id"), str):
            return part["job_id"]
    return None


def _observe_resource(
    server: UniverseMCPServer, uri: str, code: str | None, started: float, context: Context[AppState, Any] | None
) -> None:
    elapsed = time.perf_counter() - started
    outcome = telemetry.outcome_label(code)
    resource = sdk.matched_resource(server, uri)
    telemetry.RESOURCE_READS.labels(resource, outcome).inc()
    telemetry.RESOURCE_SECONDS.labels(resource, outcome).observe(elapsed)
    if not telemetry.logger.isEnabledFor(logging.INFO):
        return
    telemetry.event(
        "resource_read",
        f"resource {resource} {outcome} in {elapsed * 1000:.1f} ms",
        resource=resource,
        owner=_owner(context),
        outcome=outcome,
        elapsed_ms=round(elapsed * 1000, 3),
        rpc_id=_rpc_id(context),
    )


async def _admit_request(state: AppState, method: str, target: str) -> None:
    """Admission of a non-tool request (resource read, prompt, completion): the ``read`` class.

    Refusals are JSON-RPC errors (these requests have no tool envelope) whose ``data`` carries the same
    ``code``, ``hint`` and ``details`` a tool error would (``rate_limited`` with ``retry_after_s``).
    """
    try:
        await admit(state, f"{method} ({target[:100]})", ("read",))
    except UniverseMCPError as exc:
        data: dict[str, Any] = {"code": exc.code, "hint": exc.hint, "details": dict(exc.details or {})}
        raise MCPError(code=INVALID_REQUEST, message=exc.message, data=data) from None


def _root_cause(exc: BaseException) -> BaseException:
    # Nested UnexpectedToolErrors wrap the original exception; unwrap to the first non-wrapper.
    while isinstance(exc, ToolError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _enabled_toolsets(settings: Settings) -> list[Toolset]:
    return [toolset for toolset in ALL_TOOLSETS if toolset.id in settings.toolsets]


def _enabled_specs(settings: Settings) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for toolset in _enabled_toolsets(settings):
        specs.extend(s for s in toolset.tools if not (settings.read_only and not s.read_only))
    return specs


def build_instructions(settings: Settings) -> str:
    """The server's instructions: what holds everywhere, then the lines of each enabled toolset."""
    lines = [INSTRUCTIONS, *(t.instructions for t in _enabled_toolsets(settings) if t.instructions)]
    return describe("\n".join(lines), settings)


def _describe_schema(schema: Any, settings: Settings) -> Any:
    """Fill in the limits quoted in an input schema's descriptions (tools/_toolset.py: describe)."""
    if isinstance(schema, dict):
        return {
            k: describe(v, settings) if k == "description" and isinstance(v, str) else _describe_schema(v, settings)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_describe_schema(v, settings) for v in schema]
    return schema


def build_server(settings: Settings, *, providers: Sequence[MarketDataProvider] | None = None) -> UniverseMCPServer:
    """A ready-to-run server for ``settings``: no side effects until it is run.

    ``providers`` replaces the configured validation chain (tests and benchmarks pass fakes).
    """

    verifier = build_verifier(settings)

    @asynccontextmanager
    async def lifespan(_server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with open_app_state(settings, providers=providers) as state:
            if verifier is not None:
                verifier.bind(state)
            server.app_state = state
            _freeze_startup_objects()
            yield state

    server = UniverseMCPServer(
        settings,
        token_verifier=verifier,
        auth=auth_settings(settings),
        name="universe-mcp",
        title="Universe MCP",
        version=__version__,
        instructions=build_instructions(settings),
        lifespan=lifespan,
        log_level=settings.log_level,
        extensions=dashboard.extensions(settings),  # MCP Apps: the dashboard View (server/dashboard.py)
    )
    for spec in _enabled_specs(settings):
        description = (spec.fn.__doc__ or "").strip()
        server.add_tool(
            spec.fn,
            name=spec.name,
            title=spec.title,
            description=describe(_dedent(description), settings),
            annotations=spec.annotations,
            meta=spec.meta,
        )
        server.specs[spec.name] = spec
        tool = sdk.get_tool(server, spec.name)
        tool.parameters = _describe_schema(output_schemas.lean_input_schema(tool.parameters), settings)
        metadata = tool.fn_metadata
        if metadata.output_schema is not None:
            metadata.output_schema = output_schemas.lean_output_schema(simplify_schema(metadata.output_schema))
    for toolset in _enabled_toolsets(settings):  # resources and prompts are read-only: exposed in read-only mode too
        for resource in toolset.resources:
            server.resource(
                resource.uri,
                name=resource.name,
                title=resource.title,
                mime_type=resource.mime_type,
                description=describe(resource.description, settings),
            )(resource.fn)
        for prompt in toolset.prompts:
            server.prompt(title=prompt.title)(prompt.fn)
    dashboard.register(server, server.specs, settings)  # the page at /, View binding checks
    _register_completions(server)
    return server


_FROZEN = False


def _freeze_startup_objects() -> None:
    """Exempt everything built at start-up (models, schemas, engine, catalog) from cyclic garbage collection.

    Full collections otherwise re-scan those objects for nothing, and each pause lands on some tool call's latency
    (p99). Done once per process, after a collection, so only live objects are frozen.
    """
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()
        gc.freeze()


def simplify_schema(schema: Any) -> Any:
    """The output schema clients validate every result against, rewritten to check fast (server/output_schemas.py).

    Equivalent JSON Schema: references inlined, nullable ``anyOf`` folded into type lists. Clients re-validate every
    structured result against the output schema, so its shape is on every call's critical path.
    """
    return output_schemas.simplify_schema(schema)


def _dedent(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


def _register_completions(server: UniverseMCPServer) -> None:
    # Registered on the low-level server so the handler sees the request context (lifespan state and caller);
    # MCPServer.completion() passes only (ref, argument, context).
    async def handler(ctx: Any, params: CompleteRequestParams) -> CompleteResult:
        state: AppState = ctx.lifespan_context
        await _admit_request(state, "completion/complete", params.argument.name)
        values: list[str] = []
        if params.argument.name == "universe_id":
            try:
                caller = resolve_caller(state)
            except UniverseMCPError:
                caller = None
            if caller is not None:
                async with state.unit_of_work(owner_id=caller.owner_id) as session:
                    values = await _complete_universe_id(session, caller.owner_id, params.argument.value)
        elif params.argument.name in screening.COMPLETABLE:
            # Sectors, industries, countries, exchanges, indices and rule words, as the security master spells
            # them (the same vocabulary screen_assets and search_assets check their values against).
            context = params.context.arguments if params.context and params.context.arguments else {}
            async with state.unit_of_work() as session:
                values = await screening.complete(
                    session, params.argument.name, params.argument.value, field=context.get("field")
                )
        return CompleteResult(completion=Completion(values=values[:100], total=len(values), has_more=len(values) > 100))

    sdk.add_request_handler(server, "completion/complete", CompleteRequestParams, handler)


async def _complete_universe_id(session: Any, owner_id: Any, typed: str) -> list[str]:
    if errors.control_character(typed) is not None:  # no id or name holds one (and NUL would reach the driver)
        return []
    ids = await universe_repo.universe_ids_with_prefix(session, owner_id, typed.strip().lower(), limit=100)
    if ids or not typed.strip():
        return ids
    # Not an id prefix: match universe names, so "ai le" completes to the id of "AI leaders".
    page = await universe_repo.list_universes(session, owner_id, limit=100, name_contains=typed.strip())
    return [str(u.id) for u, _ in page]
