"""The API's request and response shapes, so the OpenAPI spec says exactly what is served."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Severity = Literal["low", "medium", "high", "critical"]
Status = Literal["open", "acknowledged", "resolved", "false_positive"]
Role = Literal["ingest", "analyst", "dpo", "admin"]


class Error(BaseModel):
    error: str = Field(description="A stable code, e.g. 'forbidden'.")
    message: str = Field(description="What went wrong and how to fix it.")


class IngestReceipt(BaseModel):
    records: int = Field(description="Records in this request (blank lines not counted).")
    loaded: int = Field(description="Newly stored.")
    duplicates: int = Field(description="Already in the store (same event_id, same content).")
    quarantined: int
    quarantined_by_reason: dict[str, int]
    source: str = Field(description="The source name its quarantined records are filed under.")
    first_position: int = Field(description="Position of its first record within that source.")


class Entities(BaseModel):
    model_config = ConfigDict(extra="allow")
    principals: list[str] = []
    tokens: list[str] = []
    keys: list[str] = []
    ips: list[str] = []
    asns: list[str] = []
    countries: list[str] = []
    fingerprints: list[str] = []
    user_agents: list[str] = []


class Incident(BaseModel):
    """Contract 5: the same object `breachwatch incidents --json` prints."""
    id: str
    severity: Severity
    status: Status
    first_seen: Optional[str]
    last_seen: Optional[str]
    detected_at: Optional[str]
    aware_at: Optional[str]
    detectors: list[str]
    entities: Entities
    subjects: int
    fields: list[str]
    summary: str
    evidence: list[Any]
    sample_event_ids: list[str]
    events: int = 0


class AlertBrief(BaseModel):
    model_config = ConfigDict(extra="allow")
    alert_id: str
    detector: str
    rule: Optional[str] = None
    severity: str
    status: str
    etype: Optional[str] = None
    entity: Optional[str] = None
    detected_at: Optional[str] = None
    evidence: Optional[str] = None


class HistoryEntry(BaseModel):
    at: Optional[str]
    action: str
    actor: str
    detail: Optional[str] = None


class IncidentDetail(Incident):
    alerts: list[AlertBrief] = []
    history: list[HistoryEntry] = []


class Alert(AlertBrief):
    ptype: Optional[str] = None
    first_seen: Optional[str] = None
    last_seen: Optional[str] = None
    incident_id: Optional[str] = None
    suppression_id: Optional[str] = None
    held_reason: Optional[str] = None


class LifecycleNote(BaseModel):
    note: str = Field("", max_length=2000)


class Suppression(BaseModel):
    suppression_id: str
    detector: str
    etype: str
    entity: str
    scope: str
    reason: str
    created_by: str
    created_at: str
    expires_at: str
    incident_id: Optional[str] = None
    hits: int
    revoked_at: Optional[str] = None
    revoked_by: Optional[str] = None
    revoke_reason: Optional[str] = None
    active: bool


class LiftSuppression(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why the suppression is lifted.")


class SuppressionLifted(BaseModel):
    suppression_id: str
    incident_id: Optional[str] = None


class FalsePositive(BaseModel):
    scope: Literal["pattern", "entity"] = Field(description="Suppress this detector on these entities (pattern), "
                                                            "or any detector on them (entity).")
    expires: str = Field(description="'30d', '12h', '2w' or an ISO date.", min_length=1, max_length=40)
    reason: str = Field(min_length=1, max_length=2000)


class SeriesPoint(BaseModel):
    t: str
    n: float


class Series(BaseModel):
    name: str
    points: list[SeriesPoint]


class Timeline(BaseModel):
    incident: str
    bucket_s: int
    series: list[Series]


class FieldRadius(BaseModel):
    field: str
    subjects: int
    reads: int


class BlastRadius(BaseModel):
    incident: str
    subjects: int
    by_field: list[FieldRadius]


class EntityHistory(BaseModel):
    etype: str
    value: str
    ptype: Optional[str]
    bucket_s: int
    series: list[Series]
    baseline: Optional[float] = Field(description="The entity's learned hourly level (or its peers'), if any.")
    baseline_source: Optional[str]
    first_seen: Optional[str]
    last_seen: Optional[str]
    events: int
    incidents: list[str]


class ScopeStep(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    kind: str
    title: str
    basis: list[str] = []
    evidence: list[str] = []
    events: int = 0
    added_subjects: int = 0
    added_pairs: int = 0
    decision: str


class ScopeDecision(BaseModel):
    accept: list[str] = Field(default_factory=list, max_length=200)
    reject: list[str] = Field(default_factory=list, max_length=200)
    accept_all: bool = False


class AwareAtChange(BaseModel):
    at: str = Field(description="When the company became aware: RFC 3339 with an offset.", min_length=1,
                    max_length=64, json_schema_extra={"format": "date-time"})
    reason: str = Field(min_length=1, max_length=2000, description="Why it changes (e.g. the regulator's finding).")


class Awareness(BaseModel):
    incident: str
    aware_at: str
    history: list[dict[str, Any]]


class DutyDone(BaseModel):
    duty: Literal["pipa_notice", "pipa_regulator", "network_act_intrusion", "gdpr_art33", "gdpr_art34"]
    at: str = Field(description="When it was done: RFC 3339 with an offset.", min_length=1, max_length=64,
                    json_schema_extra={"format": "date-time"})
    note: Optional[str] = Field(None, max_length=2000, description="Reference, e.g. the regulator's receipt number.")


class AddressBookLoaded(BaseModel):
    source: str
    rows: int


class DutyRecorded(BaseModel):
    incident: str
    duty: str
    done_at: str


class ScopeRun(BaseModel):
    run_id: str
    incident: str
    version: int
    created_at: Optional[str]
    created_by: Optional[str]
    subjects: Optional[int]
    members: Optional[int]
    non_members: Optional[int]
    pairs: Optional[int]
    files: list[str]


class Exposure(BaseModel):
    model_config = ConfigDict(extra="allow")
    incident: str
    fields: list[dict[str, Any]]
    first_exposure: Optional[str]
    last_exposure: Optional[str]


class SubjectExposures(BaseModel):
    subject_id: str
    exposures: list[Exposure]


class LookupRequest(BaseModel):
    token: str = Field(min_length=1, max_length=4096)
    subject_id: Optional[str] = Field(None, max_length=256)


class ApiKey(BaseModel):
    key_id: str
    name: str
    roles: list[Role]
    created_at: Optional[str]
    created_by: str
    expires_at: Optional[str]
    revoked_at: Optional[str]
    revoked_by: Optional[str]
    last_used_at: Optional[str]
    active: bool


class ApiKeyCreated(ApiKey):
    token: str = Field(description="The secret, shown this once; only its SHA-256 is kept.")


class NewApiKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1, max_length=4)


class User(BaseModel):
    username: str
    roles: list[Role]
    created_at: Optional[str]
    created_by: str
    disabled_at: Optional[str]
    disabled_by: Optional[str]
    last_login_at: Optional[str]
    active: bool


class NewUser(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    roles: list[Role] = Field(min_length=1, max_length=4)
    password: str = Field(min_length=12, max_length=1024)


class AuditRow(BaseModel):
    seq: int
    at: str
    actor: str
    roles: Optional[list[str]]
    action: str
    resource: Optional[str]
    outcome: str
    client: Optional[str]
    detail: Optional[dict[str, Any]]
    prev_hash: str
    hash: str


class AuditVerify(BaseModel):
    intact: bool
    rows: int
    first_bad_seq: Optional[int]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    store: str
    encrypted: bool
    events: int
    chain_links: int
    ingest: dict[str, Any]
    detection: dict[str, Any]
    watch: dict[str, Any]
    uptime_s: float


class Liveness(BaseModel):
    status: Literal["ok"]


class DatamapEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str
    table_name: str
    column_name: str
    entity: str
    field: str
    category: str
    confidence: float
    hits: int
    sampled: int
    estimated_rows: Optional[int] = None
    signals: Optional[list[str]] = None
    run_id: str
    scanned_at: Optional[str] = None


_BIGINT = 2**53  # counts: within what a JSON number holds exactly (and the store's BIGINT columns)


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):  # JSON true is not the number 1 (pydantic would take it as one)
        raise ValueError("a count is a number, not true or false")
    return v


Count = Annotated[int, Field(ge=0, le=_BIGINT), BeforeValidator(_not_bool)]  # bounds first: they reach the spec


def _json_number(v: Any) -> Any:
    if isinstance(v, (bool, str)):  # pydantic would read true as 1 and "5" as 5; JSON says neither is a number
        raise ValueError("a JSON number is needed here")
    return v


class DiscoverRun(BaseModel):
    run_id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=2000)
    started_at: str = Field(json_schema_extra={"format": "date-time"})
    finished_at: Optional[str] = Field(None, json_schema_extra={"format": "date-time"})
    status: Literal["running", "complete", "incomplete", "failed", "abandoned"]
    sample_size: Optional[Count] = None
    tables_total: Count = 0
    tables_done: Count = 0
    tables_skipped: Count = 0
    rows_sampled: Count = 0
    message: Optional[str] = Field(None, max_length=4000)


class DiscoverProgress(BaseModel):
    run_id: str
    source: str
    table_name: str = Field(min_length=1, max_length=1000)
    status: Literal["done", "skipped"]
    reason: Optional[str] = Field(None, max_length=4000)
    estimated_rows: Optional[Count] = None
    sampled_rows: Optional[Count] = None
    sample_method: Optional[str] = Field(None, max_length=100)
    columns_scanned: Optional[Count] = None
    findings: Optional[Count] = None
    finished_at: str = Field(json_schema_extra={"format": "date-time"})


class DiscoverFinding(BaseModel):
    source: str
    table_name: str = Field(min_length=1, max_length=1000)
    column_name: str = Field(min_length=1, max_length=1000)
    entity: str = Field(min_length=1, max_length=100)
    field: str = Field(min_length=1, max_length=100)
    category: str = Field(min_length=1, max_length=100)
    confidence: float = Field(ge=0.0, le=1.0)
    hits: Count
    sampled: Count
    estimated_rows: Optional[Count] = None
    signals: Optional[list[str]] = None
    run_id: str
    scanned_at: str = Field(json_schema_extra={"format": "date-time"})


class DiscoverRunUpload(BaseModel):
    """One scan run made by `breachwatch discover --server` on another machine."""
    run: DiscoverRun
    progress: list[DiscoverProgress] = Field(default_factory=list, max_length=100_000)
    findings: list[DiscoverFinding] = Field(default_factory=list, max_length=1_000_000)


class Verification(BaseModel):
    """`breachwatch verify`'s report: the chain of committed batches against the outside anchor."""
    ok: bool
    links: int
    events: int
    anchor_path: str
    anchor_links: int
    problem: Optional[str] = None
    first_bad_seq: Optional[int] = None
    first_bad_batch: Optional[dict[str, Any]] = None
    message: str
    warnings: list[str] = []


class DiscoverRunStored(BaseModel):
    run_id: str
    tables: int
    findings: int


class StoreScanRequest(BaseModel):
    """`breachwatch discover --store --server`: scan the events the server holds for personal data."""
    model_config = ConfigDict(extra="forbid")
    sample: Annotated[int, Field(ge=1, le=100_000), BeforeValidator(_json_number)] = 10_000  # as `discover --sample`
    max_rows: Optional[Annotated[int, Field(ge=1, le=100_000_000), BeforeValidator(_json_number)]] = None
    max_seconds: Optional[Annotated[float, Field(ge=0.1, le=3600), BeforeValidator(_json_number)]] = None
    fresh: bool = Field(False, strict=True)  # JSON 1 is no boolean
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(_json_number)] = 0.5


class StoreScanTable(BaseModel):
    model_config = ConfigDict(extra="allow")
    table: str
    status: str
    findings: list[dict[str, Any]]


class StoreScanReport(BaseModel):
    """One scan's report, as `discover --json` prints it under `scans`."""
    source: str
    status: str
    run_id: Optional[str] = None
    resumed: bool
    message: Optional[str] = None
    tables: list[StoreScanTable]


class Document(BaseModel):
    """A stage's report as it stored it (key findings, drill scores); null when there is none yet."""
    model_config = ConfigDict(extra="allow")
    available: bool
    recorded_at: Optional[str] = None
    data: Optional[Any] = None
