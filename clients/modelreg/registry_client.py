"""``RegistryClient``: a typed client of the registry service (models, versions, stages, aliases,
history).

Versions are ints; arguments also accept their decimal strings, as MLflow users pass them.
Listing calls return a :class:`~modelreg._grpc.Pager` (an iterator that pages by itself; see
``modelreg.tracking_client``). Every call sends the ``x-modelreg-actor`` header (``MODELREG_USER``
or the OS user), which the registry records in its audit history.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from modelreg import _convert as conv
from modelreg import entities as e
from modelreg import wire
from modelreg._grpc import Pager, Rpc
from modelreg.config import ClientSettings, TlsConfig
from modelreg.exceptions import DataLoss, InvalidArgument
from modelreg.registry.v1 import registry_pb2 as pb
from modelreg.registry.v1 import registry_pb2_grpc as pb_grpc
from modelreg.watch import EventWatch, OnStatus
from modelreg.webhooks_client import WebhookMethods


def version_number(version: int | str) -> int:
    """``3`` or ``"3"`` → 3; anything else raises InvalidArgument (INVALID_VERSION) before any call."""
    try:
        number = int(version)
    except (TypeError, ValueError):
        number = 0
    if isinstance(version, bool) or number < 1:
        raise InvalidArgument(
            f"invalid model version {version!r}: expected a positive integer",
            code="INVALID_ARGUMENT",
            reason="INVALID_VERSION",
            metadata={"field": "version"},
        )
    return number


def _str_map(tags: Mapping[str, object] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


class RegistryClient(WebhookMethods):
    """Client of ``modelreg.registry.v1.RegistryService``.

    ``target`` is ``host:port`` (``grpc://`` optional, ``grpcs://`` for TLS); it defaults to
    ``MODELREG_REGISTRY_URI`` or ``localhost:50052``. ``timeout`` is the deadline of each call in
    seconds; ``retry_seconds`` how long a call failing UNAVAILABLE is retried (default
    ``MODELREG_RETRY_SECONDS`` or 60). Thread-safe: one channel per client.
    ``tls`` (a :class:`~modelreg.config.TlsConfig`) replaces the TLS files of the environment
    (``MODELREG_CA_FILE``, ``MODELREG_CLIENT_CERT_FILE``, ``MODELREG_CLIENT_KEY_FILE``) for a
    ``grpcs://`` target, e.g. so a service passes its own client certificate.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float | None = None,
        token: str | None = None,
        tls: TlsConfig | None = None,
        retry_seconds: float | None = None,
    ) -> None:
        settings = ClientSettings.from_env()
        if retry_seconds is not None:
            settings = dataclasses.replace(settings, retry_seconds=retry_seconds)
        self.target = target or settings.registry_uri
        self._rpc = Rpc.for_client(
            self.target,
            settings,
            timeout=timeout,
            token=token,
            tls=tls,
        )
        self._stub = pb_grpc.RegistryServiceStub(self._rpc.channel)

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # Registered models

    def create_registered_model(
        self, name: str, tags: Mapping[str, object] | None = None, description: str | None = None
    ) -> e.RegisteredModel:
        request = pb.CreateRegisteredModelRequest(
            name=name, description=description or "", tags=_str_map(tags)
        )
        return conv.registered_model(
            self._rpc.unary(self._stub.CreateRegisteredModel, request).registered_model
        )

    def get_registered_model(self, name: str) -> e.RegisteredModel:
        request = pb.GetRegisteredModelRequest(name=name)
        return conv.registered_model(self._rpc.unary(self._stub.GetRegisteredModel, request).registered_model)

    def rename_registered_model(self, name: str, new_name: str) -> e.RegisteredModel:
        request = pb.RenameRegisteredModelRequest(name=name, new_name=new_name)
        return conv.registered_model(
            self._rpc.unary(self._stub.RenameRegisteredModel, request).registered_model
        )

    def update_registered_model(self, name: str, description: str | None = None) -> e.RegisteredModel:
        request = pb.UpdateRegisteredModelRequest(name=name)
        if description is not None:
            request.description = description
        return conv.registered_model(
            self._rpc.unary(self._stub.UpdateRegisteredModel, request).registered_model
        )

    def delete_registered_model(self, name: str) -> None:
        self._rpc.unary(self._stub.DeleteRegisteredModel, pb.DeleteRegisteredModelRequest(name=name))

    def search_registered_models(
        self,
        filter_string: str = "",
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Pager[e.RegisteredModel]:
        """Default order: name ASC."""

        def fetch(token: str, size: int) -> tuple[list[e.RegisteredModel], str]:
            request = pb.SearchRegisteredModelsRequest(
                filter=filter_string, order_by=list(order_by or ()), page_size=size, page_token=token
            )
            response = self._rpc.unary(self._stub.SearchRegisteredModels, request)
            return [conv.registered_model(m) for m in response.registered_models], response.next_page_token

        return Pager(fetch, page_token=page_token, max_results=max_results)

    def set_registered_model_tag(self, name: str, key: str, value: object) -> None:
        request = pb.SetRegisteredModelTagRequest(name=name, key=key, value=str(value))
        self._rpc.unary(self._stub.SetRegisteredModelTag, request)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._rpc.unary(
            self._stub.DeleteRegisteredModelTag, pb.DeleteRegisteredModelTagRequest(name=name, key=key)
        )

    # Permissions (services with access control on)

    def set_registered_model_permission(
        self, name: str, level: str, *, user: str = "", group: str = ""
    ) -> e.Permission:
        """Grants ``user`` or ``group`` (exactly one) READ, EDIT or MANAGE on the model, replacing
        their earlier grant. Needs MANAGE."""
        request = pb.SetRegisteredModelPermissionRequest(
            name=name, principal=conv.principal(user, group), level=conv.permission_level(level)
        )
        return conv.permission(self._rpc.unary(self._stub.SetRegisteredModelPermission, request).permission)

    def delete_registered_model_permission(self, name: str, *, user: str = "", group: str = "") -> None:
        request = pb.DeleteRegisteredModelPermissionRequest(name=name, principal=conv.principal(user, group))
        self._rpc.unary(self._stub.DeleteRegisteredModelPermission, request)

    def list_registered_model_permissions(
        self, name: str
    ) -> tuple[list[e.Permission], e.ModelProtection, list[e.PermissionEvent]]:
        """The grants (users first, then groups), the protection, and the history of both."""
        response = self._rpc.unary(
            self._stub.ListRegisteredModelPermissions, pb.ListRegisteredModelPermissionsRequest(name=name)
        )
        return (
            [conv.permission(p) for p in response.permissions],
            conv.model_protection(response.protection),
            [conv.permission_event(v) for v in response.events],
        )

    def set_registered_model_protection(
        self, name: str, *, production: bool = True, aliases: Sequence[str] = ()
    ) -> e.ModelProtection:
        """Which promotions need MANAGE: into or out of Production (``production``) and setting,
        moving or deleting ``aliases``. Replaces the model's protection. Needs MANAGE."""
        request = pb.SetRegisteredModelProtectionRequest(
            name=name, protection=pb.ModelProtection(production=production, aliases=list(aliases))
        )
        return conv.model_protection(
            self._rpc.unary(self._stub.SetRegisteredModelProtection, request).protection
        )

    # Versions

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        description: str | None = None,
    ) -> e.ModelVersion:
        """Registers the next version. With ``run_id`` the registry first checks the run and the
        source artifact at the tracking service (FailedPrecondition RUN_NOT_FOUND, RUN_DELETED,
        ARTIFACT_NOT_FOUND) and records the lineage."""
        request = pb.CreateModelVersionRequest(
            name=name, source=source, run_id=run_id or "", description=description or "", tags=_str_map(tags)
        )
        return conv.model_version(self._rpc.unary(self._stub.CreateModelVersion, request).model_version)

    def get_model_version(self, name: str, version: int | str) -> e.ModelVersion:
        request = pb.GetModelVersionRequest(name=name, version=version_number(version))
        return conv.model_version(self._rpc.unary(self._stub.GetModelVersion, request).model_version)

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> e.ModelVersion:
        request = pb.UpdateModelVersionRequest(name=name, version=version_number(version))
        if description is not None:
            request.description = description
        return conv.model_version(self._rpc.unary(self._stub.UpdateModelVersion, request).model_version)

    def delete_model_version(self, name: str, version: int | str) -> None:
        request = pb.DeleteModelVersionRequest(name=name, version=version_number(version))
        self._rpc.unary(self._stub.DeleteModelVersion, request)

    def download_model_version_file(
        self,
        name: str,
        version: int | str,
        path: str,
        dst: str | os.PathLike[str],
        *,
        on_bytes: Callable[[int], None] | None = None,
    ) -> e.FileDigest:
        """Downloads the registered file ``path`` (a key of the version's lineage files) to the
        file ``dst``, through the registry: READ on the model is enough. The bytes are checked
        against the size and sha256 recorded at registration; a mismatch raises DataLoss
        (DIGEST_MISMATCH) and leaves nothing at ``dst``. ``on_bytes(n)`` follows the progress."""
        local = Path(dst)
        local.parent.mkdir(parents=True, exist_ok=True)
        request = pb.DownloadModelVersionFileRequest(name=name, version=version_number(version), path=path)
        digest, size, expected = hashlib.sha256(), 0, None
        fd, tmp_name = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, wire.ChunkWriter(out) as writer:
                for message in self._rpc.unary_stream(self._stub.DownloadModelVersionFile, request):
                    if message.WhichOneof("payload") == "metadata":
                        expected = e.FileDigest(
                            message.metadata.path, message.metadata.size, message.metadata.sha256
                        )
                        continue
                    chunk = memoryview(message.chunk)
                    writer.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
            if expected is None or (expected.size, expected.sha256) != (size, digest.hexdigest()):
                raise DataLoss(
                    f"{path}: received {size} bytes with sha256 {digest.hexdigest()}, expected {expected}",
                    code="DATA_LOSS",
                    reason="DIGEST_MISMATCH",
                    metadata={"path": path},
                )
            os.replace(tmp_name, local)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return expected

    def search_model_versions(
        self,
        filter_string: str = "",
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        include_lineage: bool = False,
    ) -> Pager[e.ModelVersion]:
        """Default order: name ASC, then version DESC (newest first). Each version's ``lineage`` is
        None unless ``include_lineage`` is set: it is most of a version's size and a listing rarely
        needs it (get_model_version always returns it)."""
        view = pb.MODEL_VERSION_VIEW_FULL if include_lineage else pb.MODEL_VERSION_VIEW_BASIC

        def fetch(token: str, size: int) -> tuple[list[e.ModelVersion], str]:
            request = pb.SearchModelVersionsRequest(
                filter=filter_string,
                order_by=list(order_by or ()),
                page_size=size,
                page_token=token,
                view=view,
            )
            response = self._rpc.unary(self._stub.SearchModelVersions, request)
            return [conv.model_version(v) for v in response.model_versions], response.next_page_token

        return Pager(fetch, page_token=page_token, max_results=max_results)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: object) -> None:
        request = pb.SetModelVersionTagRequest(
            name=name, version=version_number(version), key=key, value=str(value)
        )
        self._rpc.unary(self._stub.SetModelVersionTag, request)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        request = pb.DeleteModelVersionTagRequest(name=name, version=version_number(version), key=key)
        self._rpc.unary(self._stub.DeleteModelVersionTag, request)

    # Stages

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = True,
        comment: str = "",
        *,
        override_gates: bool = False,
    ) -> e.ModelVersion:
        """Moves a version to ``stage`` (None, Staging, Production, Archived; any case).

        ``archive_existing_versions`` defaults to **True**, unlike MLflow's False: promoting a
        version to Staging or Production archives the version(s) that held that stage, in the
        same transaction, so a stage has one holder and ``models:/Name/Production`` is never
        ambiguous (this is what the MLflow workflow our users bring expects of a promotion).
        Pass ``archive_existing_versions=False`` for MLflow's behaviour of sharing a stage.
        ``comment`` is recorded in the history event. A gate on the stage may refuse the move
        (FailedPrecondition PROMOTION_GATE_FAILED or APPROVAL_REQUIRED); an admin may pass
        ``override_gates=True``, which the history records.
        """
        request = pb.TransitionModelVersionStageRequest(
            name=name,
            version=version_number(version),
            stage=stage,
            archive_existing_versions=archive_existing_versions,
            comment=comment,
            override_gates=override_gates,
        )
        return conv.model_version(
            self._rpc.unary(self._stub.TransitionModelVersionStage, request).model_version
        )

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[e.ModelVersion]:
        """The newest version in each of ``stages`` (every stage when None or empty)."""
        request = pb.GetLatestVersionsRequest(name=name, stages=list(stages or ()))
        return [
            conv.model_version(v)
            for v in self._rpc.unary(self._stub.GetLatestVersions, request).model_versions
        ]

    def rollback_stage(
        self, name: str, stage: str, comment: str = "", *, override_gates: bool = False
    ) -> e.RollbackResult:
        """Gives ``stage`` back to the version that held it before the current holder, and archives
        the current holder. Raises FailedPrecondition (NO_ROLLBACK_TARGET) when there is none; the
        stage's gate applies to the restored version unless an admin passes ``override_gates``."""
        request = pb.RollbackStageRequest(
            name=name, stage=stage, comment=comment, override_gates=override_gates
        )
        response = self._rpc.unary(self._stub.RollbackStage, request)
        archived = conv.model_version(response.archived) if response.HasField("archived") else None
        return e.RollbackResult(restored=conv.model_version(response.restored), archived=archived)

    # Aliases

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, override_gates: bool = False
    ) -> None:
        """``override_gates``: an admin's, past the alias's gate (recorded in the event)."""
        request = pb.SetRegisteredModelAliasRequest(
            name=name, alias=alias, version=version_number(version), override_gates=override_gates
        )
        self._rpc.unary(self._stub.SetRegisteredModelAlias, request)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        request = pb.DeleteRegisteredModelAliasRequest(name=name, alias=alias)
        self._rpc.unary(self._stub.DeleteRegisteredModelAlias, request)

    def get_model_version_by_alias(self, name: str, alias: str) -> e.ModelVersion:
        request = pb.GetModelVersionByAliasRequest(name=name, alias=alias)
        return conv.model_version(self._rpc.unary(self._stub.GetModelVersionByAlias, request).model_version)

    # History and resolution

    def list_model_events(
        self,
        name: str,
        version: int | str | None = None,
        max_results: int | None = None,
        *,
        include_deleted: bool = False,
    ) -> Pager[e.ModelEvent]:
        """The audit history of a model (or of one version), oldest first. ``include_deleted``
        adds, first, the events of the models of that name deleted before the current one (an
        admin's call when access control is on); each event's ``model_id`` names its model."""
        number = version_number(version) if version is not None else 0

        def fetch(token: str, size: int) -> tuple[list[e.ModelEvent], str]:
            request = pb.ListModelEventsRequest(
                name=name, version=number, page_size=size, page_token=token, include_deleted=include_deleted
            )
            response = self._rpc.unary(self._stub.ListModelEvents, request)
            return [conv.model_event(ev) for ev in response.events], response.next_page_token

        return Pager(fetch, max_results=max_results)

    def watch_model_events(
        self,
        name: str | None = None,
        *,
        actions: Sequence[str] = (),
        stages: Sequence[str] = (),
        aliases: Sequence[str] = (),
        cursor: str | None = None,
        from_beginning: bool = False,
        on_status: OnStatus | None = None,
    ) -> EventWatch:
        """The registry's events as they are written, an endless iterator: of one model
        (``name``; None: every model, which needs READ on all of them), of some ``actions``
        (e.g. ``"STAGE_TRANSITIONED"``), of some ``stages`` or ``aliases``. It starts after
        ``cursor`` (an event's ``cursor``, or the iterator's ``.cursor``), else now, or with
        ``from_beginning`` at the first event; it reconnects by itself (see modelreg.watch), and
        ``on_status`` follows its connection (modelreg.watch.OnStatus)."""
        action_numbers = [conv.event_action_number(action) for action in actions]

        def open_watch(after: str, beginning: bool) -> Iterator[pb.WatchModelEventsResponse]:
            request = pb.WatchModelEventsRequest(
                name=name or "",
                actions=action_numbers,
                stages=list(stages),
                aliases=list(aliases),
                cursor=after,
                from_beginning=beginning,
            )
            return self._rpc.unary_stream(self._stub.WatchModelEvents, request)

        return EventWatch(open_watch, cursor or "", from_beginning, on_status=on_status)

    def get_stage_holder_at(self, name: str, stage: str, time: int) -> list[int]:
        """The versions that held ``stage`` at ``time`` (ms since epoch), newest first."""
        request = pb.GetStageHolderAtRequest(name=name, stage=stage, time=time)
        return list(self._rpc.unary(self._stub.GetStageHolderAt, request).versions)

    def resolve_model_uri(self, uri: str) -> e.ModelVersion:
        """``models:/Name/3``, ``models:/Name/Production``, ``models:/Name@alias``, ``models:/Name/latest``
        → the version, with its source and lineage, in one round trip."""
        request = pb.ResolveModelUriRequest(uri=uri)
        return conv.model_version(self._rpc.unary(self._stub.ResolveModelUri, request).model_version)

    # Promotion gates and approvals

    def set_promotion_gate(
        self,
        name: str,
        target: str,
        condition: str = "",
        *,
        require_signature: bool = False,
        require_digests: bool = False,
        approvals_required: int = 0,
    ) -> e.PromotionGate:
        """Creates or replaces the gate on ``target`` ("Staging", "Production" or "@alias")."""
        request = pb.SetPromotionGateRequest(
            name=name,
            target=target,
            condition=condition,
            require_signature=require_signature,
            require_digests=require_digests,
            approvals_required=approvals_required,
        )
        return conv.promotion_gate(self._rpc.unary(self._stub.SetPromotionGate, request).gate)

    def get_promotion_gates(self, name: str) -> list[e.PromotionGate]:
        response = self._rpc.unary(self._stub.GetPromotionGates, pb.GetPromotionGatesRequest(name=name))
        return [conv.promotion_gate(gate) for gate in response.gates]

    def delete_promotion_gate(self, name: str, target: str) -> None:
        self._rpc.unary(
            self._stub.DeletePromotionGate, pb.DeletePromotionGateRequest(name=name, target=target)
        )

    def request_promotion_approval(
        self, name: str, version: int | str, target: str, comment: str = ""
    ) -> e.ApprovalRequest:
        request = pb.RequestPromotionApprovalRequest(
            name=name, version=version_number(version), target=target, comment=comment
        )
        return conv.approval_request(self._rpc.unary(self._stub.RequestPromotionApproval, request).request)

    def approve_promotion(self, name: str, request_id: int, comment: str = "") -> e.ApprovalRequest:
        request = pb.ApprovePromotionRequest(name=name, request_id=request_id, comment=comment)
        return conv.approval_request(self._rpc.unary(self._stub.ApprovePromotion, request).request)

    def reject_promotion(self, name: str, request_id: int, comment: str = "") -> e.ApprovalRequest:
        request = pb.RejectPromotionRequest(name=name, request_id=request_id, comment=comment)
        return conv.approval_request(self._rpc.unary(self._stub.RejectPromotion, request).request)

    # Serving

    def report_serving_status(
        self, name: str, version: int | str, *, loaded: bool, detail: str = "", instance: str = ""
    ) -> e.ModelEvent:
        """Records in the model's history that a serving process loaded version ``version``
        (``loaded=True``: SERVING_LOADED) or refused it after it failed its check (SERVING_LOAD_FAILED),
        and returns the event. ``detail`` is one line (at most 1,024 characters), ``instance`` the
        reporting host or pod (at most 128); the actor is whoever the call authenticates as. Needs
        READ on the model. ResourceExhausted (TOO_MANY_SERVING_REPORTS) past the service's bound on
        one caller's reports on one model in 60 s (600 by default); it writes nothing."""
        outcome = pb.SERVING_OUTCOME_LOADED if loaded else pb.SERVING_OUTCOME_LOAD_FAILED
        request = pb.ReportServingStatusRequest(
            name=name, version=version_number(version), outcome=outcome, detail=detail, instance=instance
        )
        return conv.model_event(self._rpc.unary(self._stub.ReportServingStatus, request).event)

    def list_approval_requests(
        self, name: str, status: str = "", max_results: int | None = None
    ) -> Pager[e.ApprovalRequest]:
        """Newest first; ``status``: PENDING, APPROVED, REJECTED, CONSUMED, EXPIRED (any case),
        or "" for all."""
        number = rpb_status(status)

        def fetch(token: str, size: int) -> tuple[list[e.ApprovalRequest], str]:
            request = pb.ListApprovalRequestsRequest(
                name=name, status=number, page_size=size, page_token=token
            )
            response = self._rpc.unary(self._stub.ListApprovalRequests, request)
            return [conv.approval_request(r) for r in response.requests], response.next_page_token

        return Pager(fetch, max_results=max_results)


def rpb_status(status: str) -> pb.ApprovalStatus.ValueType:
    if not status:
        return pb.APPROVAL_STATUS_UNSPECIFIED
    try:
        return pb.ApprovalStatus.Value(f"APPROVAL_STATUS_{status.upper()}")
    except ValueError:
        names = ", ".join(n for n in conv.APPROVAL_STATUS_NAMES.values() if n != "UNSPECIFIED")
        raise ValueError(f"status must be one of {names}, got {status!r}") from None
