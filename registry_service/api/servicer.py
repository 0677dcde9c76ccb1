"""RegistryService servicer: protos in, RegistryService calls, protos out.

Errors are not handled here: the domain raises ServiceError and the server interceptor maps it to
a status with one ErrorInfo.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from modelreg.registry.v1 import registry_pb2 as pb
from modelreg.registry.v1 import registry_pb2_grpc
from modelreg_server.access.servicer import permission_event_pb, permission_pb
from modelreg_server.context import call_context
from registry_service.api import convert
from registry_service.domain.service import RegistryService


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, service: RegistryService) -> None:
        self._service = service

    # -- registered models ---------------------------------------------------------------------

    def CreateRegisteredModel(
        self, request: pb.CreateRegisteredModelRequest, context: grpc.ServicerContext
    ) -> pb.CreateRegisteredModelResponse:
        model = self._service.create_registered_model(
            call_context(), request.name, request.description, request.tags
        )
        return pb.CreateRegisteredModelResponse(registered_model=convert.registered_model(model))

    def GetRegisteredModel(
        self, request: pb.GetRegisteredModelRequest, context: grpc.ServicerContext
    ) -> pb.GetRegisteredModelResponse:
        model = self._service.get_registered_model(call_context(), request.name)
        return pb.GetRegisteredModelResponse(registered_model=convert.registered_model(model))

    def RenameRegisteredModel(
        self, request: pb.RenameRegisteredModelRequest, context: grpc.ServicerContext
    ) -> pb.RenameRegisteredModelResponse:
        model = self._service.rename_registered_model(call_context(), request.name, request.new_name)
        return pb.RenameRegisteredModelResponse(registered_model=convert.registered_model(model))

    def UpdateRegisteredModel(
        self, request: pb.UpdateRegisteredModelRequest, context: grpc.ServicerContext
    ) -> pb.UpdateRegisteredModelResponse:
        description = request.description if request.HasField("description") else None
        model = self._service.update_registered_model(call_context(), request.name, description)
        return pb.UpdateRegisteredModelResponse(registered_model=convert.registered_model(model))

    def DeleteRegisteredModel(
        self, request: pb.DeleteRegisteredModelRequest, context: grpc.ServicerContext
    ) -> pb.DeleteRegisteredModelResponse:
        self._service.delete_registered_model(call_context(), request.name)
        return pb.DeleteRegisteredModelResponse()

    def SearchRegisteredModels(
        self, request: pb.SearchRegisteredModelsRequest, context: grpc.ServicerContext
    ) -> pb.SearchRegisteredModelsResponse:
        page = self._service.search_registered_models(
            call_context(), request.filter, list(request.order_by), request.page_size, request.page_token
        )
        return pb.SearchRegisteredModelsResponse(
            registered_models=[convert.registered_model(m) for m in page.items],
            next_page_token=page.next_page_token,
        )

    def SetRegisteredModelTag(
        self, request: pb.SetRegisteredModelTagRequest, context: grpc.ServicerContext
    ) -> pb.SetRegisteredModelTagResponse:
        self._service.set_registered_model_tag(call_context(), request.name, request.key, request.value)
        return pb.SetRegisteredModelTagResponse()

    def DeleteRegisteredModelTag(
        self, request: pb.DeleteRegisteredModelTagRequest, context: grpc.ServicerContext
    ) -> pb.DeleteRegisteredModelTagResponse:
        self._service.delete_registered_model_tag(call_context(), request.name, request.key)
        return pb.DeleteRegisteredModelTagResponse()

    # -- model versions ------------------------------------------------------------------------

    def CreateModelVersion(
        self, request: pb.CreateModelVersionRequest, context: grpc.ServicerContext
    ) -> pb.CreateModelVersionResponse:
        version = self._service.create_model_version(
            call_context(), request.name, request.source, request.run_id, request.description, request.tags
        )
        return pb.CreateModelVersionResponse(model_version=convert.model_version(version))

    def GetModelVersion(
        self, request: pb.GetModelVersionRequest, context: grpc.ServicerContext
    ) -> pb.GetModelVersionResponse:
        version = self._service.get_model_version(call_context(), request.name, request.version)
        return pb.GetModelVersionResponse(model_version=convert.model_version(version))

    def UpdateModelVersion(
        self, request: pb.UpdateModelVersionRequest, context: grpc.ServicerContext
    ) -> pb.UpdateModelVersionResponse:
        description = request.description if request.HasField("description") else None
        version = self._service.update_model_version(
            call_context(), request.name, request.version, description
        )
        return pb.UpdateModelVersionResponse(model_version=convert.model_version(version))

    def DeleteModelVersion(
        self, request: pb.DeleteModelVersionRequest, context: grpc.ServicerContext
    ) -> pb.DeleteModelVersionResponse:
        self._service.delete_model_version(call_context(), request.name, request.version)
        return pb.DeleteModelVersionResponse()

    def SearchModelVersions(
        self, request: pb.SearchModelVersionsRequest, context: grpc.ServicerContext
    ) -> pb.SearchModelVersionsResponse:
        with_lineage = request.view == pb.MODEL_VERSION_VIEW_FULL
        page = self._service.search_model_versions(
            call_context(),
            request.filter,
            list(request.order_by),
            request.page_size,
            request.page_token,
            with_lineage,
        )
        response = pb.SearchModelVersionsResponse(next_page_token=page.next_page_token)
        for version in page.items:
            convert.add_model_version(response.model_versions, version, with_lineage=with_lineage)
        return response

    def SetModelVersionTag(
        self, request: pb.SetModelVersionTagRequest, context: grpc.ServicerContext
    ) -> pb.SetModelVersionTagResponse:
        self._service.set_model_version_tag(
            call_context(), request.name, request.version, request.key, request.value
        )
        return pb.SetModelVersionTagResponse()

    def DeleteModelVersionTag(
        self, request: pb.DeleteModelVersionTagRequest, context: grpc.ServicerContext
    ) -> pb.DeleteModelVersionTagResponse:
        self._service.delete_model_version_tag(call_context(), request.name, request.version, request.key)
        return pb.DeleteModelVersionTagResponse()

    # -- stages --------------------------------------------------------------------------------

    def TransitionModelVersionStage(
        self, request: pb.TransitionModelVersionStageRequest, context: grpc.ServicerContext
    ) -> pb.TransitionModelVersionStageResponse:
        version = self._service.transition_model_version_stage(
            call_context(),
            request.name,
            request.version,
            request.stage,
            request.archive_existing_versions,
            request.comment,
            request.override_gates,
        )
        return pb.TransitionModelVersionStageResponse(model_version=convert.model_version(version))

    def GetLatestVersions(
        self, request: pb.GetLatestVersionsRequest, context: grpc.ServicerContext
    ) -> pb.GetLatestVersionsResponse:
        response = pb.GetLatestVersionsResponse()
        for version in self._service.get_latest_versions(call_context(), request.name, list(request.stages)):
            # Without lineage (GetModelVersion has it): four lineages of runs at their caps
            # could take the answer past the message limit.
            convert.add_model_version(response.model_versions, version, with_lineage=False)
        return response

    def RollbackStage(
        self, request: pb.RollbackStageRequest, context: grpc.ServicerContext
    ) -> pb.RollbackStageResponse:
        result = self._service.rollback_stage(
            call_context(), request.name, request.stage, request.comment, request.override_gates
        )
        response = pb.RollbackStageResponse(restored=convert.model_version(result.restored))
        if result.archived is not None:
            response.archived.CopyFrom(convert.model_version(result.archived))
        return response

    # -- aliases -------------------------------------------------------------------------------

    def SetRegisteredModelAlias(
        self, request: pb.SetRegisteredModelAliasRequest, context: grpc.ServicerContext
    ) -> pb.SetRegisteredModelAliasResponse:
        self._service.set_registered_model_alias(
            call_context(),
            request.name,
            request.alias,
            request.version,
            override_gates=request.override_gates,
        )
        return pb.SetRegisteredModelAliasResponse()

    def DeleteRegisteredModelAlias(
        self, request: pb.DeleteRegisteredModelAliasRequest, context: grpc.ServicerContext
    ) -> pb.DeleteRegisteredModelAliasResponse:
        self._service.delete_registered_model_alias(call_context(), request.name, request.alias)
        return pb.DeleteRegisteredModelAliasResponse()

    def GetModelVersionByAlias(
        self, request: pb.GetModelVersionByAliasRequest, context: grpc.ServicerContext
    ) -> pb.GetModelVersionByAliasResponse:
        version = self._service.get_model_version_by_alias(call_context(), request.name, request.alias)
        return pb.GetModelVersionByAliasResponse(model_version=convert.model_version(version))

    # -- history and resolution ----------------------------------------------------------------

    def ListModelEvents(
        self, request: pb.ListModelEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListModelEventsResponse:
        page = self._service.list_model_events(
            call_context(),
            request.name,
            request.version,
            request.page_size,
            request.page_token,
            include_deleted=request.include_deleted,
        )
        return pb.ListModelEventsResponse(
            events=[convert.model_event(e) for e in page.items], next_page_token=page.next_page_token
        )

    def WatchModelEvents(
        self, request: pb.WatchModelEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchModelEventsResponse]:
        items = self._service.watch_model_events(
            call_context(),
            request.name,
            [convert.event_action_name(action) for action in request.actions],
            list(request.stages),
            list(request.aliases),
            request.cursor,
            request.from_beginning,
            context.is_active,
        )
        for item in items:
            if item.event is None:
                yield pb.WatchModelEventsResponse(cursor=item.cursor)
            else:
                yield pb.WatchModelEventsResponse(event=convert.model_event(item.event), cursor=item.cursor)

    def GetStageHolderAt(
        self, request: pb.GetStageHolderAtRequest, context: grpc.ServicerContext
    ) -> pb.GetStageHolderAtResponse:
        versions = self._service.get_stage_holder_at(
            call_context(), request.name, request.stage, request.time
        )
        return pb.GetStageHolderAtResponse(versions=versions)

    def ResolveModelUri(
        self, request: pb.ResolveModelUriRequest, context: grpc.ServicerContext
    ) -> pb.ResolveModelUriResponse:
        version = self._service.resolve_model_uri(call_context(), request.uri)
        return pb.ResolveModelUriResponse(model_version=convert.model_version(version))

    def DownloadModelVersionFile(
        self, request: pb.DownloadModelVersionFileRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DownloadModelVersionFileResponse]:
        opened = self._service.download_model_version_file(
            call_context(), request.name, request.version, request.path
        )
        yield pb.DownloadModelVersionFileResponse(metadata=convert.file_digest(opened.digest))
        for chunk in opened.chunks:
            yield pb.DownloadModelVersionFileResponse(chunk=chunk)

    # -- access control ------------------------------------------------------------------------

    def SetRegisteredModelPermission(
        self, request: pb.SetRegisteredModelPermissionRequest, context: grpc.ServicerContext
    ) -> pb.SetRegisteredModelPermissionResponse:
        grant = self._service.set_registered_model_permission(
            call_context(), request.name, request.principal.user, request.principal.group, request.level
        )
        return pb.SetRegisteredModelPermissionResponse(permission=permission_pb(grant))

    def DeleteRegisteredModelPermission(
        self, request: pb.DeleteRegisteredModelPermissionRequest, context: grpc.ServicerContext
    ) -> pb.DeleteRegisteredModelPermissionResponse:
        self._service.delete_registered_model_permission(
            call_context(), request.name, request.principal.user, request.principal.group
        )
        return pb.DeleteRegisteredModelPermissionResponse()

    def ListRegisteredModelPermissions(
        self, request: pb.ListRegisteredModelPermissionsRequest, context: grpc.ServicerContext
    ) -> pb.ListRegisteredModelPermissionsResponse:
        found = self._service.list_registered_model_permissions(call_context(), request.name)
        return pb.ListRegisteredModelPermissionsResponse(
            permissions=[permission_pb(g) for g in found.grants],
            protection=convert.protection(found.protection),
            events=[permission_event_pb(e) for e in found.events],
        )

    def SetRegisteredModelProtection(
        self, request: pb.SetRegisteredModelProtectionRequest, context: grpc.ServicerContext
    ) -> pb.SetRegisteredModelProtectionResponse:
        protection = self._service.set_registered_model_protection(
            call_context(), request.name, request.protection.production, list(request.protection.aliases)
        )
        return pb.SetRegisteredModelProtectionResponse(protection=convert.protection(protection))

    # -- promotion gates and approvals ---------------------------------------------------------

    def SetPromotionGate(
        self, request: pb.SetPromotionGateRequest, context: grpc.ServicerContext
    ) -> pb.SetPromotionGateResponse:
        gate = self._service.set_promotion_gate(
            call_context(),
            request.name,
            request.target,
            request.condition,
            require_signature=request.require_signature,
            require_digests=request.require_digests,
            approvals_required=request.approvals_required,
        )
        return pb.SetPromotionGateResponse(gate=convert.promotion_gate(gate))

    def GetPromotionGates(
        self, request: pb.GetPromotionGatesRequest, context: grpc.ServicerContext
    ) -> pb.GetPromotionGatesResponse:
        found = self._service.get_promotion_gates(call_context(), request.name)
        return pb.GetPromotionGatesResponse(gates=[convert.promotion_gate(gate) for gate in found])

    def DeletePromotionGate(
        self, request: pb.DeletePromotionGateRequest, context: grpc.ServicerContext
    ) -> pb.DeletePromotionGateResponse:
        self._service.delete_promotion_gate(call_context(), request.name, request.target)
        return pb.DeletePromotionGateResponse()

    def RequestPromotionApproval(
        self, request: pb.RequestPromotionApprovalRequest, context: grpc.ServicerContext
    ) -> pb.RequestPromotionApprovalResponse:
        made = self._service.request_promotion_approval(
            call_context(), request.name, request.version, request.target, request.comment
        )
        return pb.RequestPromotionApprovalResponse(request=convert.approval_request(made))

    def ReportServingStatus(
        self, request: pb.ReportServingStatusRequest, context: grpc.ServicerContext
    ) -> pb.ReportServingStatusResponse:
        event = self._service.report_serving_status(
            call_context(),
            request.name,
            request.version,
            convert.serving_outcome(request.outcome),
            request.detail,
            request.instance,
        )
        return pb.ReportServingStatusResponse(event=convert.model_event(event))

    def ApprovePromotion(
        self, request: pb.ApprovePromotionRequest, context: grpc.ServicerContext
    ) -> pb.ApprovePromotionResponse:
        decided = self._service.decide_promotion(
            call_context(), request.name, request.request_id, True, request.comment
        )
        return pb.ApprovePromotionResponse(request=convert.approval_request(decided))

    def RejectPromotion(
        self, request: pb.RejectPromotionRequest, context: grpc.ServicerContext
    ) -> pb.RejectPromotionResponse:
        decided = self._service.decide_promotion(
            call_context(), request.name, request.request_id, False, request.comment
        )
        return pb.RejectPromotionResponse(request=convert.approval_request(decided))

    def ListApprovalRequests(
        self, request: pb.ListApprovalRequestsRequest, context: grpc.ServicerContext
    ) -> pb.ListApprovalRequestsResponse:
        page = self._service.list_approval_requests(
            call_context(),
            request.name,
            convert.approval_status_in(request.status),
            request.page_size,
            request.page_token,
        )
        return pb.ListApprovalRequestsResponse(
            requests=[convert.approval_request(r) for r in page.items], next_page_token=page.next_page_token
        )
