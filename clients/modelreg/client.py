"""``modelreg.Client``: the tracking and registry services behind MLflow's ``MlflowClient`` names.

An MLflow script works with ``MlflowClient()`` replaced by ``modelreg.Client()``: same method
names, same argument names, results with the attributes MLflow users read (``mv.version``,
``mv.current_stage``, ``mv.source``, ``run.info.run_id``, ``run.data.metrics``, ...).

Differences worth knowing:

- ``ModelVersion.version`` is a string, as MLflow's (``"3"``), that also equals the int 3;
  version arguments accept ints or strings. ``modelreg.MlflowClient`` is this class.
- ``transition_model_version_stage`` archives the previous holder of the target stage by default
  (``archive_existing_versions=True``; MLflow defaults to False). See
  :meth:`Client.transition_model_version_stage`.
- Search calls return a :class:`~modelreg.entities.PagedList` (a list with ``.token``). With
  ``max_results`` it holds at most that many items and ``.token`` fetches the next page (pass it
  back as ``page_token``); without ``max_results`` it holds every match (MLflow caps at a default
  page size instead) and ``.token`` is None.
- ``search_model_versions`` orders by name ASC, then version DESC (newest first) unless
  ``order_by`` says otherwise; ``search_runs`` by start_time DESC.
- Added by modelreg: ``get_model_history``, ``rollback_stage``, ``resolve_model_uri``,
  ``get_stage_holder_at``, ``seal_registered_versions``, ``report_serving_status``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

from modelreg import _convert as conv
from modelreg import entities as e
from modelreg import wire
from modelreg._grpc import Pager, T
from modelreg.config import TlsConfig
from modelreg.exceptions import DeadlineExceeded, ModelregError, NotFound, Unauthenticated, Unavailable
from modelreg.registry_client import RegistryClient
from modelreg.tracking_client import Progress, TrackingClient
from modelreg.watch import EventWatch, OnStatus
from modelreg.webhooks_client import WebhookMethods

P = ParamSpec("P")
R = TypeVar("R")


def _on_registry(method: Callable[Concatenate[WebhookMethods, P], R]) -> Callable[Concatenate[Client, P], R]:
    """A RegistryClient method as a Client method, with its signature and docstring."""

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(self.registry, *args, **kwargs)

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


def _flush_buffered_metrics() -> None:
    """Sends metrics the fluent API still buffers, so reads (and the lineage a new model version
    records) see every point logged so far in this process."""
    from modelreg import fluent  # fluent imports the clients; import here to avoid a cycle

    fluent.flush_metrics()


class Client:
    """Both services in one object. Targets default to ``modelreg.set_tracking_uri`` /
    ``set_registry_uri``, then ``MODELREG_TRACKING_URI`` / ``MODELREG_REGISTRY_URI``, then
    ``localhost:50051`` / ``localhost:50052``. ``token`` (default ``MODELREG_TOKEN``) authenticates
    every call to services that run with access control on; ``tls`` (default from
    ``MODELREG_CA_FILE`` / ``MODELREG_CLIENT_CERT_FILE`` / ``MODELREG_CLIENT_KEY_FILE``) the files
    of ``grpcs://`` targets."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        *,
        token: str | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        self.tracking = TrackingClient(tracking_uri, token=token, tls=tls)
        self.registry = RegistryClient(registry_uri, token=token, tls=tls)

    @property
    def tracking_uri(self) -> str:
        return self.tracking.target

    @property
    def registry_uri(self) -> str:
        return self.registry.target

    # Webhooks (modelreg.webhooks_client)
    create_webhook = _on_registry(WebhookMethods.create_webhook)
    get_webhook = _on_registry(WebhookMethods.get_webhook)
    list_webhooks = _on_registry(WebhookMethods.list_webhooks)
    update_webhook = _on_registry(WebhookMethods.update_webhook)
    delete_webhook = _on_registry(WebhookMethods.delete_webhook)
    test_webhook = _on_registry(WebhookMethods.test_webhook)
    rotate_webhook_secret = _on_registry(WebhookMethods.rotate_webhook_secret)
    list_webhook_deliveries = _on_registry(WebhookMethods.list_webhook_deliveries)
    replay_webhook_delivery = _on_registry(WebhookMethods.replay_webhook_delivery)

    def close(self) -> None:
        self.tracking.close()
        self.registry.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # Experiments

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, object] | None = None
    ) -> str:
        """Returns the new experiment's id."""
        return self.tracking.create_experiment(name, artifact_location, tags).experiment_id

    def get_experiment(self, experiment_id: str) -> e.Experiment:
        return self.tracking.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> e.Experiment | None:
        """None when no experiment has that name (as MLflow)."""
        try:
            return self.tracking.get_experiment_by_name(name)
        except NotFound:
            return None

    def search_experiments(
        self,
        view_type: str | int = "ACTIVE_ONLY",
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> e.PagedList[e.Experiment]:
        pager = self.tracking.search_experiments(
            filter_string or "", view_type, max_results, order_by, page_token
        )
        return _paged(pager)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.tracking.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.tracking.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.tracking.restore_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: object) -> None:
        self.tracking.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.tracking.delete_experiment_tag(experiment_id, key)

    def set_experiment_permission(
        self, experiment_id: str, level: str, *, user: str = "", group: str = ""
    ) -> e.Permission:
        return self.tracking.set_experiment_permission(experiment_id, level, user=user, group=group)

    def delete_experiment_permission(self, experiment_id: str, *, user: str = "", group: str = "") -> None:
        self.tracking.delete_experiment_permission(experiment_id, user=user, group=group)

    def list_experiment_permissions(
        self, experiment_id: str
    ) -> tuple[list[e.Permission], list[e.PermissionEvent]]:
        return self.tracking.list_experiment_permissions(experiment_id)

    # Runs

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, object] | None = None,
        run_name: str | None = None,
    ) -> e.Run:
        # MLflow's client makes nested runs with this tag; modelreg records the parent natively.
        parent = str(tags.get("mlflow.parentRunId", "")) if tags else ""
        run = self.tracking.create_run(experiment_id, run_name, start_time, tags, parent or None)
        return conv.mlflow_run(run)

    def get_run(self, run_id: str) -> e.Run:
        """The run, its tags holding MLflow's ``mlflow.runName`` (and ``mlflow.parentRunId``)."""
        _flush_buffered_metrics()
        return conv.mlflow_run(self.tracking.get_run(run_id))

    def get_parent_run(self, run_id: str) -> e.Run | None:
        """The run's parent (``mlflow.parentRunId``), None for a top-level run."""
        parent = self.get_run(run_id).info.parent_run_id
        return self.get_run(parent) if parent else None

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: str | int = "ACTIVE_ONLY",
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> e.PagedList[e.Run]:
        _flush_buffered_metrics()
        pager = self.tracking.search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        runs = [conv.mlflow_run(run) for run in pager]
        return e.PagedList(runs, token=pager.token)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        self.tracking.update_run(run_id, status=status, run_name=name)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        self.tracking.set_terminated(run_id, status or "FINISHED", end_time)

    def delete_run(self, run_id: str) -> None:
        self.tracking.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.tracking.restore_run(run_id)

    def list_run_events(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        *,
        run_id: str = "",
        actions: Sequence[str] = (),
        cursor: str = "",
        max_results: int = 0,
    ) -> e.RunEvents:
        """Run lifecycle events after ``cursor``; see TrackingClient.list_run_events."""
        return self.tracking.list_run_events(
            experiment_ids, run_id=run_id, actions=actions, cursor=cursor, max_results=max_results
        )

    def log_param(self, run_id: str, key: str, value: object) -> object:
        self.tracking.log_param(run_id, key, value)
        return value

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None
    ) -> None:
        self.tracking.log_metric(run_id, key, value, timestamp, step)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[e.Metric] = (),
        params: Sequence[e.Param] = (),
        tags: Sequence[e.RunTag] = (),
    ) -> None:
        """Stores the batch atomically; an ``mlflow.runName`` tag renames the run (as in MLflow):
        see :func:`log_batch_renaming`."""
        log_batch_renaming(self.tracking, run_id, metrics, params, tags)

    def set_tag(self, run_id: str, key: str, value: object) -> None:
        """Sets a tag; ``mlflow.runName`` renames the run, as in MLflow."""
        self.tracking.set_tag(run_id, key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.tracking.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str) -> list[e.Metric]:
        _flush_buffered_metrics()
        return list(self.tracking.get_metric_history(run_id, key))

    # Artifacts

    def log_artifact(
        self,
        run_id: str,
        local_path: str,
        artifact_path: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.tracking.log_artifact(run_id, local_path, artifact_path, progress=progress)

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str,
        artifact_path: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.tracking.log_artifacts(run_id, local_dir, artifact_path, progress=progress)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Uploads ``text`` (UTF-8) as the artifact file ``artifact_file`` of the run."""
        from modelreg import fluent

        fluent.upload_file(
            self.tracking, run_id, artifact_file, lambda p: p.write_text(text, encoding="utf-8")
        )

    def log_dict(self, run_id: str, dictionary: Mapping[str, object], artifact_file: str) -> None:
        """Uploads ``dictionary`` as YAML (.yaml/.yml) or JSON (anything else), as MLflow does."""
        from modelreg import fluent

        self.log_text(run_id, fluent.dict_text(dictionary, artifact_file), artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[e.FileInfo]:
        return self.tracking.list_artifacts(run_id, path or "")

    def download_artifacts(
        self, run_id: str, path: str, dst_path: str | None = None, *, progress: Progress | None = None
    ) -> str:
        """Downloads into ``dst_path`` (a new temporary directory when None), verifying every
        file's sha256; returns the local path."""
        return self.tracking.download_artifacts(run_id, path, dst_path, progress=progress)

    # Registered models

    def create_registered_model(
        self, name: str, tags: Mapping[str, object] | None = None, description: str | None = None
    ) -> e.RegisteredModel:
        return self.registry.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str) -> e.RegisteredModel:
        return self.registry.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> e.RegisteredModel:
        return self.registry.rename_registered_model(name, new_name)

    def update_registered_model(self, name: str, description: str | None = None) -> e.RegisteredModel:
        return self.registry.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        self.registry.delete_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> e.PagedList[e.RegisteredModel]:
        """Default order: name ASC."""
        pager = self.registry.search_registered_models(filter_string or "", max_results, order_by, page_token)
        return _paged(pager)

    def set_registered_model_tag(self, name: str, key: str, value: object) -> None:
        self.registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.registry.delete_registered_model_tag(name, key)

    # Registered model permissions (services with access control on)

    def set_registered_model_permission(
        self, name: str, level: str, *, user: str = "", group: str = ""
    ) -> e.Permission:
        """Grants ``user`` or ``group`` READ, EDIT or MANAGE on the model. Needs MANAGE."""
        return self.registry.set_registered_model_permission(name, level, user=user, group=group)

    def delete_registered_model_permission(self, name: str, *, user: str = "", group: str = "") -> None:
        self.registry.delete_registered_model_permission(name, user=user, group=group)

    def list_registered_model_permissions(
        self, name: str
    ) -> tuple[list[e.Permission], e.ModelProtection, list[e.PermissionEvent]]:
        """The grants on the model, its protection and the history of both."""
        return self.registry.list_registered_model_permissions(name)

    def set_registered_model_protection(
        self, name: str, *, production: bool = True, aliases: Sequence[str] = ()
    ) -> e.ModelProtection:
        """Makes promotions into or out of Production (``production``) and changes of ``aliases``
        need MANAGE. Needs MANAGE."""
        return self.registry.set_registered_model_protection(name, production=production, aliases=aliases)

    def download_model_version_file(
        self, name: str, version: int | str, path: str, dst: str | os.PathLike[str]
    ) -> e.FileDigest:
        """Downloads one registered file of a version (a key of its lineage files) to ``dst``,
        verified against its recorded sha256; READ on the model is enough."""
        return self.registry.download_model_version_file(name, version, path, dst)

    # Model versions

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        description: str | None = None,
        *,
        await_creation_for: int | None = None,
    ) -> e.ModelVersion:
        """Registers the next version of ``name`` (which must exist). With ``run_id`` the lineage
        (params, metrics, tags, file digests) is recorded; metrics still buffered by the fluent
        API are sent first so the lineage sees them. The version is READY when this returns, so
        ``await_creation_for`` (MLflow's) has nothing to wait for."""
        del await_creation_for
        if run_id:
            _flush_buffered_metrics()
        return self.registry.create_model_version(name, source, run_id, tags, description)

    def get_model_version(self, name: str, version: int | str) -> e.ModelVersion:
        return self.registry.get_model_version(name, version)

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> e.ModelVersion:
        return self.registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.registry.delete_model_version(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        include_lineage: bool = False,
    ) -> e.PagedList[e.ModelVersion]:
        """Versions matching ``filter_string`` (e.g. ``"name='HousePricePredictor'"``), ordered by
        name ASC then version DESC (newest first) unless ``order_by`` says otherwise. ``lineage`` is
        None on each unless ``include_lineage`` is set (``get_model_version`` always has it)."""
        pager = self.registry.search_model_versions(
            filter_string or "", max_results, order_by, page_token, include_lineage
        )
        return _paged(pager)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[e.ModelVersion]:
        """The newest version in each of ``stages`` (every stage when None)."""
        return self.registry.get_latest_versions(name, stages)

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
        """Moves a version to ``stage`` ("None", "Staging", "Production", "Archived"; any case).

        ``archive_existing_versions`` defaults to **True** (MLflow: False). Promoting to Staging or
        Production archives the versions that held that stage, atomically, so the stage has one
        holder, ``models:/Name/Production`` is never ambiguous, and the history can tell which
        version to roll back to. This is what the MLflow workflow our users bring expects ("the
        version that held Production before is archived") without the argument. Pass
        ``archive_existing_versions=False`` to let several versions share the stage, as in MLflow.
        A promotion gate on the stage may refuse the move; ``override_gates`` is for admins.
        """
        return self.registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions, comment, override_gates=override_gates
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: object) -> None:
        self.registry.set_model_version_tag(name, version, key, value)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.registry.delete_model_version_tag(name, version, key)

    def set_registered_model_alias(
        self, name: str, alias: str, version: int | str, *, override_gates: bool = False
    ) -> None:
        """Points ``alias`` at ``version``; the alias's gate applies (``override_gates``: admins)."""
        self.registry.set_registered_model_alias(name, alias, version, override_gates=override_gates)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> e.ModelVersion:
        return self.registry.get_model_version_by_alias(name, alias)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are stored: its run's artifact location joined with the
        registered path (``file:///...`` or ``s3://...``), as MLflow answers; the ``source`` of a
        version registered without a run. Reading there directly skips the digest checks that
        ``modelreg.sklearn.load_model`` / ``modelreg download`` make."""
        mv = self.registry.get_model_version(name, version)
        if mv.lineage is None:
            return mv.source
        root = self.tracking.get_run(mv.lineage.run_id).info.artifact_uri.rstrip("/")
        return f"{root}/{mv.lineage.artifact_path}" if mv.lineage.artifact_path else root

    def copy_model_version(self, src_model_uri: str, dst_name: str) -> e.ModelVersion:
        """Registers the files of ``src_model_uri`` (``models:/Name/3``, ``models:/Name@alias``,
        ...) as the next version of ``dst_name``, which is created when missing, as MLflow does;
        the new version keeps the source's run and lineage."""
        from modelreg import fluent

        src = self.registry.resolve_model_uri(src_model_uri)
        return fluent.create_version(self.registry, dst_name, src.source, src.run_id)

    # modelreg's own

    def get_model_history(
        self, name: str, version: int | str | None = None, *, include_deleted: bool = False
    ) -> list[e.ModelEvent]:
        """Every audit event of a model (or of one version), oldest first; ``include_deleted``
        adds those of the models of that name deleted before it (see list_model_events)."""
        return list(self.registry.list_model_events(name, version, include_deleted=include_deleted))

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
        """The registry's events as they are written (see RegistryClient.watch_model_events): an
        endless iterator that resumes by itself; its ``.cursor`` is where to resume later."""
        return self.registry.watch_model_events(
            name,
            actions=actions,
            stages=stages,
            aliases=aliases,
            cursor=cursor,
            from_beginning=from_beginning,
            on_status=on_status,
        )

    def rollback_stage(
        self, name: str, stage: str, comment: str = "", *, override_gates: bool = False
    ) -> e.RollbackResult:
        """Gives ``stage`` back to its previous holder and archives the current one (the stage's
        promotion gate applies to the restored version; ``override_gates`` is for admins)."""
        return self.registry.rollback_stage(name, stage, comment, override_gates=override_gates)

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
        """Guards promotions of ``name`` into ``target`` ("Staging", "Production", "@alias")."""
        return self.registry.set_promotion_gate(
            name,
            target,
            condition,
            require_signature=require_signature,
            require_digests=require_digests,
            approvals_required=approvals_required,
        )

    def get_promotion_gates(self, name: str) -> list[e.PromotionGate]:
        return self.registry.get_promotion_gates(name)

    def delete_promotion_gate(self, name: str, target: str) -> None:
        self.registry.delete_promotion_gate(name, target)

    def request_promotion_approval(
        self, name: str, version: int | str, target: str, comment: str = ""
    ) -> e.ApprovalRequest:
        return self.registry.request_promotion_approval(name, version, target, comment)

    def approve_promotion(self, name: str, request_id: int, comment: str = "") -> e.ApprovalRequest:
        return self.registry.approve_promotion(name, request_id, comment)

    def reject_promotion(self, name: str, request_id: int, comment: str = "") -> e.ApprovalRequest:
        return self.registry.reject_promotion(name, request_id, comment)

    def list_approval_requests(self, name: str, status: str = "") -> list[e.ApprovalRequest]:
        """Every request of ``name`` (of ``status``), newest first, fetched page by page."""
        return list(self.registry.list_approval_requests(name, status))

    def resolve_model_uri(self, uri: str) -> e.ModelVersion:
        return self.registry.resolve_model_uri(uri)

    def report_serving_status(
        self, name: str, version: int | str, *, loaded: bool, detail: str = "", instance: str = ""
    ) -> e.ModelEvent:
        """Records that a serving process loaded (or refused) a version: see
        :meth:`RegistryClient.report_serving_status`."""
        return self.registry.report_serving_status(
            name, version, loaded=loaded, detail=detail, instance=instance
        )

    def get_stage_holder_at(self, name: str, stage: str, time: int) -> list[int]:
        """The versions that held ``stage`` at ``time`` (ms since epoch), newest first."""
        return self.registry.get_stage_holder_at(name, stage, time)

    def seal_registered_versions(self, name: str | None = None) -> list[e.VersionSeal]:
        """Seals in tracking the source of every registered version the caller can see (of model
        ``name`` only, when given), as registering has done since seals exist: the upgrade step
        for versions registered before, whose files can otherwise still be overwritten.

        One result per version, in search order. A version that cannot be sealed (its run deleted,
        its run or files gone, sealing refused to the caller) is a FAILED result and the rest go
        on; an unavailable service or rejected credentials raise, as every other version would
        fail the same way. Idempotent, so it can simply be run again. Sealing directly needs EDIT
        on each run's experiment (or admin): run it as an admin to cover every version.
        """
        filter_string = ""
        if name is not None:
            self.registry.get_registered_model(name)  # a misspelt name is NOT_FOUND, not "nothing to seal"
            filter_string = f"name = {wire.quote(name)}"
        versions = self.registry.search_model_versions(filter_string, include_lineage=True)
        return [self._seal_version(version) for version in versions]

    def _seal_version(self, version: e.ModelVersion) -> e.VersionSeal:
        lineage = version.lineage
        if lineage is None:
            return e.VersionSeal(
                version.name,
                int(version.version),
                None,
                None,
                "SKIPPED",
                reason="NO_LINEAGE",
                message="registered without a run: tracking holds none of its files",
            )
        result = partial(
            e.VersionSeal, version.name, int(version.version), lineage.run_id, lineage.artifact_path
        )
        try:
            files = self.tracking.seal_artifacts(lineage.run_id, lineage.artifact_path)
        except (Unavailable, DeadlineExceeded, Unauthenticated):
            raise  # the service or the credentials, not this version
        except ModelregError as exc:
            return result("FAILED", code=exc.code, reason=exc.reason, message=exc.message)
        return result("SEALED", files=len(files))


def log_batch_renaming(
    tracking: TrackingClient,
    run_id: str,
    metrics: Sequence[e.Metric] = (),
    params: Sequence[e.Param] = (),
    tags: Sequence[e.RunTag] = (),
) -> None:
    """A batch whose ``mlflow.runName`` tag renames the run, which the service does in a call of
    its own (a batch refuses the tag). The rename goes first: a refused name stores nothing, and
    a batch sent again after a failure renames again (no change) rather than logging twice. A
    batch refused after the rename puts the previous name back, so a refused batch changes
    nothing."""
    names = [t for t in tags if t.key == conv.RUN_NAME_TAG]
    rest = [t for t in tags if t.key != conv.RUN_NAME_TAG]
    if not names:
        tracking.log_batch(run_id, metrics, params, rest)
        return
    previous = tracking.get_run(run_id).info.run_name
    tracking.set_tag(run_id, conv.RUN_NAME_TAG, names[-1].value)
    try:
        tracking.log_batch(run_id, metrics, params, rest)
    except ModelregError:
        if previous != names[-1].value:
            tracking.set_tag(run_id, conv.RUN_NAME_TAG, previous)
        raise


def _paged(pager: Pager[T]) -> e.PagedList[T]:
    items = list(pager)  # the token is known only once the pager is exhausted
    return e.PagedList(items, token=pager.token)
