"""A thin client over the Python modules generated from proto/ (see generate.sh).

What a government team's client needs beyond the generated stubs: a bearer token on every call,
the gRPC health and reflection services, and decoding the rich error model
(`grpc-status-details-bin` trailer -> google.rpc.Status -> BadRequest / ErrorInfo / ...).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("QILU_PY_GEN", os.path.join(HERE, "gen")))

import grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402

from qilu.awards.v1 import awards_service_pb2_grpc  # noqa: E402
from qilu.common.v1 import audit_pb2  # noqa: E402
from qilu.registry.v1 import enterprise_pb2, registry_service_pb2_grpc  # noqa: E402
from qilu.review.v1 import review_service_pb2_grpc  # noqa: E402

REGISTRY = "qilu.registry.v1.EnterpriseRegistryService"
REVIEW = "qilu.review.v1.AchievementReviewService"
AWARDS = "qilu.awards.v1.AwardAllocationService"
SERVICES = (REGISTRY, REVIEW, AWARDS)

STUBS = {
    REGISTRY: registry_service_pb2_grpc.EnterpriseRegistryServiceStub,
    REVIEW: review_service_pb2_grpc.AchievementReviewServiceStub,
    AWARDS: awards_service_pb2_grpc.AwardAllocationServiceStub,
}

TIMEOUT = 10.0


class CheckFailed(AssertionError):
    """A scenario step did not behave as the contract says."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def channel(addr: str) -> grpc.Channel:
    """A plaintext (h2c) channel to `host:port`."""
    return grpc.insecure_channel(addr)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def stub(chan: grpc.Channel, service: str):
    return STUBS[service](chan)


def wait_serving(addr: str, service: str = "", deadline_s: float = 60.0,
                 proc: subprocess.Popen | None = None) -> None:
    """Polls grpc.health.v1.Health/Check until SERVING (or the process dies)."""
    end = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise CheckFailed(f"server exited with {proc.returncode} before serving")
        try:
            with channel(addr) as chan:
                if health_status(chan, service) == "SERVING":
                    return
        except grpc.RpcError as e:
            last = f"{e.code().name}: {e.details()}"
        time.sleep(0.3)
    raise CheckFailed(f"{addr} {service or '(server)'} not SERVING after {deadline_s}s: {last}")


def health_status(chan: grpc.Channel, service: str) -> str:
    """The gRPC health status name of `service` ('' = the whole server); needs no token."""
    resp = health_pb2_grpc.HealthStub(chan).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=3.0)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def reflected_services(chan: grpc.Channel) -> list[str]:
    """Service names listed by server reflection (v1alpha; the server also speaks v1)."""
    responses = reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
    names: list[str] = []
    for resp in responses:
        names.extend(s.name for s in resp.list_services_response.service)
    return sorted(names)


@dataclass
class RichError:
    """A failed call with its google.rpc.Status details unpacked."""
    code: grpc.StatusCode
    message: str
    field_violations: list[tuple[str, str]] = field(default_factory=list)
    reason: str = ""
    domain: str = ""
    detail_types: list[str] = field(default_factory=list)


def rich_error(err: grpc.RpcError) -> RichError:
    """Decodes the `grpc-status-details-bin` trailer: google.rpc.Status -> typed details."""
    out = RichError(code=err.code(), message=err.details() or "")
    raw = next((v for k, v in (err.trailing_metadata() or ())
                if k == "grpc-status-details-bin"), None)
    if raw is None:
        return out
    status = status_pb2.Status.FromString(raw)
    check(status.code == err.code().value[0],
          f"google.rpc.Status code {status.code} != call status {err.code()}")
    for detail in status.details:
        out.detail_types.append(detail.TypeName())
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.field_violations.extend((v.field, v.description) for v in bad.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.reason, out.domain = info.reason, info.domain
    return out


def create_enterprise(chan: grpc.Channel, token: str, uscc: str, display_name: str,
                      established_date: str = "2012-03-01"):
    return stub(chan, REGISTRY).CreateEnterprise(
        enterprise_pb2.CreateEnterpriseRequest(
            enterprise=enterprise_pb2.Enterprise(
                uscc=uscc, display_name=display_name, established_date=established_date),
            request_id=str(uuid.uuid4())),
        metadata=bearer(token), timeout=TIMEOUT)


def get_enterprise(chan: grpc.Channel, token: str, uscc: str):
    return stub(chan, REGISTRY).GetEnterprise(
        enterprise_pb2.GetEnterpriseRequest(name=f"enterprises/{uscc}"),
        metadata=bearer(token), timeout=TIMEOUT)


def audit(chan: grpc.Channel, token: str, service: str):
    """(ListAuditEvents first page, VerifyAuditChain) of one service."""
    s = stub(chan, service)
    events = s.ListAuditEvents(audit_pb2.ListAuditEventsRequest(page_size=100),
                               metadata=bearer(token), timeout=TIMEOUT)
    verdict = s.VerifyAuditChain(audit_pb2.VerifyAuditChainRequest(),
                                 metadata=bearer(token), timeout=TIMEOUT)
    return events, verdict


def step(message: str) -> None:
    print(f"  - {message}", flush=True)
