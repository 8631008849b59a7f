"""One WSMan shell = one PSRP runspace pool, run with psrpcore's server state machines.

The HTTP layer calls ``PSRPShell`` with the bytes of Create, Command, Send, Receive and Signal;
this module feeds them to psrpcore, runs complete pipelines through the shell's
``api.CommandRunner`` and queues the answers per pipeline until a Receive collects them.

The runspace is no-language, like Exchange's: script text is refused, each command is a cmdlet
name with parameters. A ``CmdletError`` becomes a PowerShell ErrorRecord: a terminating one
ends the pipeline Failed (the record travels in the PipelineState message, as PowerShell
sends it), a non-terminating one goes to the error stream and the pipeline goes on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    PipelineInputEvent,
    PSRPPayload,
    ResetRunspaceStateEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore._payload import PSRPMessage, create_message
from psrpcore.types import (
    ErrorRecord,
    HostMethodIdentifier,
    PipelineState,
    PSInvocationState,
    PSRPMessageType,
    serialize,
)

from remediate.lab import psrp_values, psrpcore_speed, wire
from remediate.lab.api import CmdletError, CommandRunner, LabObject
from remediate.lab.wsman import (
    SIGNAL_CTRL_C,
    SIGNAL_TERMINATE,
    command_quota_exceeded,
    invalid_request,
)

log = logging.getLogger(__name__)
psrpcore_speed.install()

# Largest PSRP payload handed out per Stream element (pypsrp's default envelope is 150 KiB,
# base64 inflates by a third).
_CHUNK = 64 * 1024
_FINISHED = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)
# MaxConcurrentCommandsPerShell (exchange-notes.md "Throttling"; pypsrp issue 148): a shell
# takes this many commands in its life, then refuses every further one.
MAX_COMMANDS_PER_SHELL = 1000
# Seconds a cmdlet takes on the server, by cmdlet name: none by default.
Latency = Callable[[str], float]


def no_latency(cmdlet: str) -> float:
    return 0.0


class _Pool(ServerRunspacePool):
    """psrpcore's pool, tolerant of pypsrp writing the call id as ``CI`` (psrpcore reads
    ``ci`` and would fail on SetMaxRunspaces/SetMinRunspaces), that also queues objects
    already serialized (``wire.Clixml``) and serializes each plain PipelineState (Running,
    Completed, ..., no error) once: two per command otherwise (issue 15)."""

    def __init__(self) -> None:
        super().__init__()
        self._states: dict[int, wire.Clixml] = {}

    def prepare_message(
        self,
        message: Any,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        if type(message) is PipelineState and not message.ExceptionAsErrorRecord:
            message, message_type = self._state_message(message), PSRPMessageType.PipelineState
        if not isinstance(message, wire.Clixml):
            super().prepare_message(message, message_type, pipeline_id, stream_type)
            return
        # What psrpcore's prepare_message does after serializing (psrpcore 0.3, pinned):
        # it has no public way to queue a body serialized elsewhere
        message_type = message_type or PSRPMessageType.PipelineOutput
        data = create_message(False, message_type, message.data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(
            PSRPMessage(
                message_type,
                bytearray(data),
                self.runspace_pool_id,
                pipeline_id,
                self._fragment_counter,
                stream_type,
            )
        )

    def _state_message(self, message: PipelineState) -> wire.Clixml:
        state = int(message.PipelineState)
        known = self._states.get(state)
        if known is None:
            element = serialize(
                message,
                self._cipher,  # as psrpcore's prepare_message serializes (psrpcore 0.3)
                our_capability=self.our_capability,
                their_capability=self.their_capability,
            )
            known = self._states[state] = wire.Clixml(
                ElementTree.tostring(element, encoding="utf-8", method="xml")
            )
        return known

    def _process_SetMaxRunspaces(self, event: SetMaxRunspacesEvent) -> None:
        _lowercase_ci(event)
        super()._process_SetMaxRunspaces(event)

    def _process_SetMinRunspaces(self, event: SetMinRunspacesEvent) -> None:
        _lowercase_ci(event)
        super()._process_SetMinRunspaces(event)


def _lowercase_ci(event: SetMaxRunspacesEvent | SetMinRunspacesEvent) -> None:
    message = event._ps_object  # psrpcore offers no public access to the raw message
    if not hasattr(message, "ci") and hasattr(message, "CI"):
        message.ci = message.CI


class _Pipeline(ServerPipeline):
    def fail(self, error: ErrorRecord) -> None:
        """End the pipeline Failed, the terminating error inside the state message."""
        self.prepare_message(
            PipelineState(PipelineState=int(PSInvocationState.Failed), ExceptionAsErrorRecord=error)
        )
        self.state = PSInvocationState.Failed


@dataclass
class _Invocation:
    pipeline: _Pipeline
    command_id: str
    client_input: int = 0  # objects the client piped in (the lab refuses them)
    ran: bool = False


class _Host:
    """The HostSink handed to cmdlets: host lines go to the client's host (WriteLine) when it
    has a UI, else to the information stream tagged PSHOST as Write-Host does."""

    def __init__(self, pipeline: _Pipeline, has_ui: bool, source: str) -> None:
        self._pipeline = pipeline
        self._has_ui = has_ui
        self._source = source

    def write_host(self, line: str) -> None:
        if self._has_ui:
            self._pipeline.host_call(HostMethodIdentifier.WriteLine2, [line])
        else:
            self._pipeline.write_information(line, self._source, tags=["PSHOST"])

    def write_warning(self, line: str) -> None:
        self._pipeline.prepare_message(
            psrp_values.warning_record(line), message_type=PSRPMessageType.WarningRecord
        )


class PSRPShell:
    """A runspace pool behind one WSMan ShellId. Thread-safe: one lock per shell.

    Pipelines run on their own threads, at most the pool's MaxRunspaces at once (PowerShell
    queues the others until a runspace is free), so a Command is answered at once and a
    client can have several pipelines in flight. A cmdlet's ``latency`` is spent with the
    lock released, as a real server's runspaces work side by side.
    """

    def __init__(
        self,
        shell_id: str,
        runner: CommandRunner,
        creation: bytes,
        *,
        latency: Latency = no_latency,
        max_commands: int = MAX_COMMANDS_PER_SHELL,
    ) -> None:
        self.shell_id = shell_id
        self._runner = runner
        self._latency = latency
        self._max_commands = max_commands
        self.commands_seen = 0
        self._running = 0  # pipelines holding a runspace
        self.peak_running = 0  # the most pipelines that ever ran at once in this shell
        self._cond = threading.Condition()
        self._pool = _Pool()
        self._outbox: dict[uuid.UUID | None, list[bytes]] = defaultdict(list)
        self._invocations: dict[uuid.UUID, _Invocation] = {}
        self._by_command: dict[str, uuid.UUID] = {}
        self.closed = False
        with self._cond:
            self._feed(creation)

    # --- WSMan operations ------------------------------------------------------------------

    def command(self, requested_id: str | None, data: bytes) -> str:
        """Create a pipeline from the first fragment(s) of its CreatePipeline message."""
        pipeline_id = _pipeline_id(data)
        command_id = (requested_id or str(pipeline_id)).upper()
        with self._cond:
            if self.commands_seen >= self._max_commands:
                raise command_quota_exceeded()
            self.commands_seen += 1
            pipeline = _Pipeline(self._pool, pipeline_id)
            self._invocations[pipeline_id] = _Invocation(pipeline, command_id)
            self._by_command[command_id] = pipeline_id
            self._feed(data)
        return command_id

    def send(self, stream: str, command_id: str | None, data: bytes) -> None:
        if command_id is not None:
            self._lookup(command_id)
        with self._cond:
            self._feed(data)

    def receive(self, command_id: str | None, timeout: float) -> tuple[list[bytes], bool] | None:
        """Pending output for the pool (command_id None) or one pipeline: (chunks, done).
        Waits up to ``timeout`` for something to arrive; None when nothing did."""
        key = self._lookup(command_id) if command_id is not None else None
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._outbox[key] and not self._done(key):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                self._cond.wait(remaining)
            chunks: list[bytes] = []
            size = 0
            box = self._outbox[key]
            while box and (not chunks or size + len(box[0]) <= _CHUNK):
                size += len(box[0])
                chunks.append(box.pop(0))
            return chunks, self._done(key)

    def signal(self, command_id: str | None, code: str) -> None:
        if command_id is None:
            return
        with self._cond:
            pipeline_id = self._by_command.get(command_id.upper())
            if pipeline_id is None:
                return  # already terminated: Windows accepts a repeated terminate
            invocation = self._invocations[pipeline_id]
            lowered = code.lower()
            if lowered == SIGNAL_CTRL_C and invocation.pipeline.state == PSInvocationState.Running:
                invocation.pipeline.stop()
                self._drain()
            if lowered in (SIGNAL_TERMINATE, SIGNAL_CTRL_C):
                self._forget(pipeline_id)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            for pipeline_id in list(self._invocations):
                self._forget(pipeline_id)
            self._cond.notify_all()

    # --- internals -------------------------------------------------------------------------

    def _lookup(self, command_id: str) -> uuid.UUID:
        pipeline_id = self._by_command.get(command_id.upper())
        if pipeline_id is None:
            raise invalid_request(f"The command {command_id} does not exist in this shell.")
        return pipeline_id

    def _done(self, key: uuid.UUID | None) -> bool:
        if key is None:
            return False
        invocation = self._invocations.get(key)
        return invocation is None or invocation.pipeline.state in _FINISHED

    def _forget(self, pipeline_id: uuid.UUID) -> None:
        invocation = self._invocations.pop(pipeline_id)
        self._by_command.pop(invocation.command_id, None)
        self._outbox.pop(pipeline_id, None)
        self._pool.pipeline_table.pop(pipeline_id, None)

    def _feed(self, data: bytes) -> None:
        """Give bytes to psrpcore, act on every complete event, queue what it answers."""
        self._pool.receive_data(PSRPPayload(data, StreamType.default, None))
        while (event := self._pool.next_event()) is not None:
            self._handle(event)
        self._drain()

    def _handle(self, event: object) -> None:
        if isinstance(event, CreatePipelineEvent):
            invocation = self._invocations[event.pipeline_id]
            metadata = invocation.pipeline.metadata
            assert metadata is not None  # psrpcore set it from this CreatePipeline
            if metadata.no_input:
                self._run(invocation)
        elif isinstance(event, PipelineInputEvent):
            self._invocations[event.pipeline_id].client_input += 1
        elif isinstance(event, EndOfPipelineInputEvent):
            self._run(self._invocations[event.pipeline_id])
        elif isinstance(event, GetCommandMetadataEvent):
            pipeline = self._invocations[event.pipeline_id].pipeline
            pipeline.start()
            pipeline.complete()
        elif isinstance(event, SetMaxRunspacesEvent | SetMinRunspacesEvent):
            self._pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, ResetRunspaceStateEvent):
            self._pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            self._pool.runspace_availability_response(event.ci, 1)

    def _drain(self) -> None:
        while (payload := self._pool.data_to_send(_CHUNK)) is not None:
            self._outbox[payload.pipeline_id].append(payload.data)
        self._cond.notify_all()

    def _run(self, invocation: _Invocation) -> None:
        """Start the pipeline's thread (called with the lock held)."""
        if invocation.ran:
            return
        invocation.ran = True
        threading.Thread(
            target=self._execute, args=(invocation,), name="lab-pipeline", daemon=True
        ).start()

    def _execute(self, invocation: _Invocation) -> None:
        with self._cond:
            while self._running >= max(1, int(self._pool.max_runspaces or 1)):
                if self._gone(invocation):
                    return
                self._cond.wait(0.5)
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
            try:
                self._execute_locked(invocation)
            finally:
                self._running -= 1
                self._drain()

    def _execute_locked(self, invocation: _Invocation) -> None:
        pipeline = invocation.pipeline
        if self._gone(invocation):
            return
        pipeline.start()
        metadata = pipeline.metadata
        assert metadata is not None  # psrpcore set it from the CreatePipeline message
        host_info = metadata.host
        has_ui = not (host_info.IsHostNull or host_info.IsHostUINull)
        statements: list[list] = [[]]
        for command in metadata.commands:
            statements[-1].append(command)
            if command.end_of_statement:
                statements.append([])
        if invocation.client_input:
            pipeline.fail(psrp_values.error_record(psrp_values.input_refused(), None))
            return
        for statement in filter(None, statements):
            if not self._run_statement(invocation, statement, has_ui):
                return
        pipeline.complete()

    def _gone(self, invocation: _Invocation) -> bool:
        """Closed, terminated or stopped while it waited."""
        return (
            self.closed
            or invocation.pipeline.pipeline_id not in self._invocations
            or invocation.pipeline.state in _FINISHED
        )

    def _pause(self, seconds: float) -> None:
        """Wait with the lock released (the lock is held by the caller)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._cond.wait(remaining)

    def _run_statement(self, invocation: _Invocation, commands: list, has_ui: bool) -> bool:
        """Run one statement; False when a terminating error ended the pipeline (or it was
        stopped meanwhile)."""
        pipeline = invocation.pipeline
        flowing: list[LabObject] = []
        for command in commands:
            name = str(command.command_text)
            self._pause(self._latency(name))
            if self._gone(invocation):
                return False
            try:
                if command.is_script:
                    raise psrp_values.no_language_error(name)
                call = psrp_values.decode_call(name, command.parameters)
                flowing = self._runner.invoke(call, flowing, _Host(pipeline, has_ui, name))
            except CmdletError as exc:
                error = exc
            except Exception as exc:  # a lab bug: the client sees a terminating error
                log.exception("lab cmdlet %s failed", name)
                error = psrp_values.internal_error(exc)
            else:
                continue
            record = psrp_values.error_record(error, name)
            if error.terminating:
                pipeline.fail(record)
                return False
            pipeline.prepare_message(record, message_type=PSRPMessageType.ErrorRecord)
            flowing = []
        for obj in flowing:  # objects, or primitives (Get-Content's lines are strings)
            pipeline.write_output(wire.clixml(obj) if isinstance(obj, LabObject) else obj)
        return True


def _pipeline_id(data: bytes) -> uuid.UUID:
    """The PSRP pipeline id in the message header of a first fragment (MS-PSRP 2.2.1/2.2.4):
    a 21-byte fragment header, then destination, message type, RPID and PID (little-endian
    GUIDs)."""
    start = 21 + 4 + 4 + 16
    if len(data) < start + 16:
        raise invalid_request("The Command arguments do not hold a PSRP message.")
    return uuid.UUID(bytes_le=bytes(data[start : start + 16]))
