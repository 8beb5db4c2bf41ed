"""NENA EIDO (Emergency Incident Data Object, NENA-STA-021.1, JSON) from a closed incident.

Pure: an :class:`~protocols.schemas.IncidentState` in, one EIDO document (a JSON-ready
dict) out. The field names are NENA's (EIDO 1.0, the ``openapi.yaml`` in the public
repository NENA911/EIDO-JSON); the components filled are the ones an Ansim incident
has data for:

- ``incidentComponent``: type, status, priority, district (beat), internal id;
- ``locationComponent``: the position as a PIDF-LO document (``locationByValue``: a GML
  point in WGS84 and a civic address carrying the district and the place);
- ``agencyComponent``: the control room that owns the incident;
- ``agentComponent``: one per actor in the history (operators, the core as an
  automaton, responders reporting on their own);
- ``notesComponent``: the operators' notes, and one note per history entry (who did
  what when: the action log), each tied to its agent and timestamped;
- ``emergencyResourceComponent`` and ``dispatchComponent``: every unit dispatched, one
  dispatch component per dispatch (who sent which unit when); on-scene and release
  times are the action-log notes the resource refers to.

Not emitted: call, callback, person (personal data stays in Ansim), vehicle, caution,
media, alarms/sensors, merge/link components. ``docs/export.md`` has the detail, and
``protocols/eido_schema.json`` is the JSON Schema this module's output is tested against.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from protocols.schemas import HistoryEntry, IncidentKind, IncidentState

EIDO_VERSION: Final = "1.0"
CONTEXT: Final = {"@vocab": "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"}
CORE_ACTOR: Final = "core"  # the engine's actor name for automatic changes

# Incident type: the Ansim kind as an Incident Type registry text. NENA's registry was not
# available to check these against; docs/export.md says so, and the internal code carries
# the exact Ansim kind.
INCIDENT_TYPES: Final[dict[IncidentKind, str]] = {
    IncidentKind.SOS: "PanicAlarm",
    IncidentKind.CCTV: "VideoAnalyticsAlarm",
    IncidentKind.CAMERA_FAULT: "EquipmentFault",
    IncidentKind.PUBLIC_ALERT: "PublicAlert",
}
# Location type registry: "Caller" (NENA's sample) for a phone's own position.
LOCATION_TYPES: Final[dict[IncidentKind, str]] = {
    IncidentKind.SOS: "Caller",
    IncidentKind.CCTV: "Incident",
    IncidentKind.CAMERA_FAULT: "Incident",
    IncidentKind.PUBLIC_ALERT: "Incident",
}
# Agent roles, as in NENA's samples; responders acting on their own are "Responder".
ROLE_CALL_TAKING: Final = "Call Taking"
ROLE_DISPATCHING: Final = "Dispatching"
ROLE_RESPONDER: Final = "Responder"
DISPATCHING_ACTIONS: Final = frozenset(
    {"dispatched", "reassigned", "on-scene", "resolved", "false-alarm"}
)
RESOURCE_TYPES: Final[dict[str, str]] = {
    "police": "LawEnforcement",
    "scout": "SafetyEscort",
    "guard": "SecurityGuard",
}
# A closed incident has freed its units: each is available again (or off duty).
UNIT_STATUS_CLEARED: Final = "Available"

# "R-12 (police, 340 m)" / "R-12 (police)" / "R-12 (police), taken from I-000003: text"
_DISPATCH_DETAIL = re.compile(r"^(?P<unit>[A-Za-z0-9_.:@-]+) \((?P<kind>[a-z-]+)")
_REPORT_DETAIL = re.compile(r"^(?P<unit>[A-Za-z0-9_.:@-]+) reported ")
_REASSIGN_DETAIL = re.compile(r"^(?P<unit>[A-Za-z0-9_.:@-]+) → ")
_FREED = re.compile(r"freed (?P<units>[^;]+)$")


@dataclass(frozen=True, slots=True)
class EidoSource:
    """Who issues the EIDO: the owning agency and the functional element (FQDN-like ids)."""

    agency_id: str = "ansim.invalid"
    element_id: str = "core.ansim.invalid"


def timestamp(ts: float) -> str:
    """UNIX seconds as EIDO writes times: RFC 3339 in UTC, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ref(component_id: str) -> dict[str, str]:
    return {"$ref": component_id}


def _pidf_lo(inc: IncidentState, ts: str) -> str:
    """A PIDF-LO presence document (RFC 4119/5491/5139): a GML point and the civic district."""
    civic = f"<ca:A4>{xml_escape(inc.district)}</ca:A4>" if inc.district else ""
    if inc.place:
        civic += f"<ca:LOC>{xml_escape(inc.place)}</ca:LOC>"
    civic_xml = f"<ca:civicAddress>{civic}</ca:civicAddress>" if civic else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
        ' xmlns:gml="http://www.opengis.net/gml"'
        ' xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"'
        f" entity={quoteattr('pres:' + inc.source)}>"
        f"<tuple id={quoteattr('t-' + inc.id)}><status><gp:geopriv><gp:location-info>"
        '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{inc.lat:.6f} {inc.lon:.6f}</gml:pos></gml:Point>"
        f"{civic_xml}</gp:location-info><gp:usage-rules/></gp:geopriv></status>"
        f"<timestamp>{ts}</timestamp></tuple></presence>"
    )


class _Builder:
    def __init__(self, inc: IncidentState, source: EidoSource) -> None:
        self.inc = inc
        self.source = source
        self.agency = source.agency_id
        self.doc_id = f"urn:emergency:uid:incidentid:{inc.id}:{self.agency}"
        self.agents: dict[str, set[str]] = {}  # agent $id -> roles
        self.agent_seen: dict[str, float] = {}
        self.agent_notes: dict[str, list[str]] = {}
        self.notes: list[dict[str, Any]] = []

    def agent_id(self, actor: str) -> str:
        return f"{actor}@{self.agency}"

    def prologue(self, component_id: str, ts: float, agent: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$id": component_id,
            "lastUpdateTimeStamp": timestamp(ts),
            "updatedByAgencyReference": _ref(self.agency),
        }
        if agent is not None:
            out["updatedByAgentReference"] = _ref(agent)
        return out

    def agent(self, actor: str, role: str, ts: float) -> str:
        agent = self.agent_id(actor or "unknown")
        self.agents.setdefault(agent, set()).add(role)
        self.agent_seen[agent] = max(ts, self.agent_seen.get(agent, ts))
        return agent

    def note(self, kind: str, ts: float, agent: str, text: str) -> str:
        note_id = f"{self.doc_id}:{kind}:{len(self.notes)}"
        note = self.prologue(note_id, ts, agent)
        note["notesActionComments"] = html.escape(text) if text else "(no text)"
        note["agentReference"] = _ref(agent)
        self.notes.append(note)
        self.agent_notes.setdefault(agent, []).append(note_id)
        return note_id

    def role_for(self, entry: HistoryEntry, units: set[str]) -> str:
        if entry.actor in units:
            return ROLE_RESPONDER
        if entry.action in DISPATCHING_ACTIONS:
            return ROLE_DISPATCHING
        return ROLE_CALL_TAKING

    def build(self) -> dict[str, Any]:
        inc = self.inc
        closed = inc.closed_at if inc.closed_at is not None else inc.updated
        location_id = f"{self.doc_id}:location:0"

        # Units: every unit a dispatch named, with its kind, plus units that reported in.
        unit_kind: dict[str, str] = {}
        for entry in inc.history:
            if entry.action == "dispatched":
                m = _DISPATCH_DETAIL.match(entry.detail)
                if m:
                    unit_kind.setdefault(m["unit"], m["kind"])
        units = set(unit_kind)

        # The action log: one note per history entry, tied to its agent.
        unit_notes: dict[str, list[str]] = {u: [] for u in units}
        unit_seen: dict[str, float] = {}
        dispatches: list[dict[str, Any]] = []
        closing_agent: str | None = None
        assigned: set[str] = set()  # units on the incident as the history goes
        for entry in inc.history:
            agent = self.agent(entry.actor, self.role_for(entry, units), entry.ts)
            text = f"{entry.action}: {entry.detail}" if entry.detail else entry.action
            note_id = self.note("action", entry.ts, agent, text)
            about = {entry.actor} if entry.actor in units else set()
            for pattern in (_DISPATCH_DETAIL, _REPORT_DETAIL, _REASSIGN_DETAIL):
                m = pattern.match(entry.detail)
                if m and m["unit"] in units:
                    about.add(m["unit"])
            if entry.action == "dispatched":
                assigned |= about
            elif entry.action in ("released", "reassigned"):
                assigned -= about
            elif entry.action == "on-scene" and entry.actor not in units:
                about |= assigned  # an operator marked the incident on scene: all its units
            if entry.action in ("resolved", "false-alarm"):
                closing_agent = agent
                freed = _FREED.search(entry.detail)
                if freed:
                    about |= {u for u in freed["units"].split(", ") if u in units}
            for unit in about:
                unit_notes[unit].append(note_id)
                unit_seen[unit] = max(entry.ts, unit_seen.get(unit, entry.ts))
            if entry.action == "dispatched" and about:
                dispatch = self.prologue(
                    f"{self.doc_id}:dispatch:{len(dispatches)}", entry.ts, agent
                )
                dispatch["agencyReference"] = _ref(self.agency)
                dispatch["agentReference"] = _ref(agent)
                dispatch["emergencyResourceReference"] = [
                    _ref(self._resource_id(u)) for u in sorted(about)
                ]
                dispatch["notesReference"] = [_ref(note_id)]
                dispatches.append(dispatch)

        # The operators' own notes.
        for n in inc.notes:
            agent = self.agent(n.operator, ROLE_CALL_TAKING, n.ts)
            self.note("note", n.ts, agent, n.text)

        resources_out = []
        for unit in sorted(units):
            unit_agent = self.agent(unit, ROLE_RESPONDER, unit_seen.get(unit, closed))
            kind = unit_kind[unit]
            resource = self.prologue(self._resource_id(unit), unit_seen.get(unit, closed))
            resource.update(
                {
                    "emergencyResourceTypeCommonRegistryText": RESOURCE_TYPES.get(kind, "Other"),
                    "emergencyResourceTypeInternalText": kind,
                    "emergencyResourceName": unit,
                    "resourceAttributeRegistryText": [],
                    "primaryUnitStatusRegistryText": UNIT_STATUS_CLEARED,
                    "secondaryUnitStatusRegistryText": [],
                    "agentReference": [_ref(unit_agent)],
                    "notesReference": [_ref(n) for n in unit_notes[unit]],
                }
            )
            resources_out.append(resource)

        if not self.agents:  # no history at all: the core issued it, as an automaton
            self.agent(CORE_ACTOR, ROLE_CALL_TAKING, closed)
        agents_out = []
        for agent, roles in self.agents.items():
            component = self.prologue(agent, self.agent_seen[agent])
            component["agentRoleRegistryText"] = sorted(roles)
            component["agencyReference"] = _ref(self.agency)
            if self.agent_notes.get(agent):
                component["notesReference"] = [_ref(n) for n in self.agent_notes[agent]]
            agents_out.append(component)

        location = self.prologue(location_id, inc.created)
        location["locationTypeDescriptionRegistryText"] = LOCATION_TYPES.get(inc.kind, "Incident")
        location["locationByValue"] = _pidf_lo(inc, timestamp(inc.created))
        description = ", ".join(p for p in (inc.place, inc.district) if p)
        if description:
            location["locationDescriptionText"] = description

        incident = self.prologue(f"{self.doc_id}:incident", closed, closing_agent)
        incident.update(
            {
                "incidentTypeCommonRegistryText": INCIDENT_TYPES.get(inc.kind, "Other"),
                "incidentTypeInternalCode": inc.kind.value,
                "incidentTypeInternalText": inc.title or inc.kind.value,
                "incidentStatusInternalText": [inc.status.value]
                + ([inc.disposition] if inc.disposition else []),
                "internalIncidentId": inc.id,
                "incidentPriorityInternalText": f"P{inc.priority}"
                + (" escalated" if inc.escalated else ""),
                "locationReference": [_ref(location_id)],
                "agentReference": [_ref(a) for a in self.agents],
                "notesReference": [_ref(n["$id"]) for n in self.notes],
            }
        )
        if inc.district:
            incident["beatOrDispatchGroupText"] = inc.district

        agency = self.prologue(self.agency, closed)
        agency.update(
            {
                "agencyRoleDescriptionRegistryText": ["CallReceiving", "Dispatching"],
                "agencyType": ["psap"],
                "incidentOwningAgencyIndicator": True,
            }
        )

        doc = self.prologue(self.doc_id, closed, closing_agent)
        doc.update(
            {
                "eidoVersion": EIDO_VERSION,
                "issuingElementIdentification": self.source.element_id,
                "incidentComponent": incident,
                "agencyComponent": [agency],
                "agentComponent": agents_out,
                "locationComponent": [location],
                "notesComponent": self.notes,
            }
        )
        if dispatches:
            doc["dispatchComponent"] = dispatches
        if resources_out:
            doc["emergencyResourceComponent"] = resources_out
        doc["@context"] = dict(CONTEXT)
        return doc

    def _resource_id(self, unit: str) -> str:
        return f"{self.doc_id}:resource:{unit}"


def build_eido(inc: IncidentState, source: EidoSource | None = None) -> dict[str, Any]:
    """One EIDO document for one (closed) incident, ready for ``json.dumps``."""
    return _Builder(inc, source or EidoSource()).build()


def build_eidos(
    incidents: Iterable[IncidentState], source: EidoSource | None = None
) -> list[dict[str, Any]]:
    return [build_eido(inc, source) for inc in incidents]


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for the documents :func:`build_eido` writes."""
    text = resources.files("protocols").joinpath("eido_schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def references(doc: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(every ``$id``, every ``$ref``) in a document: a receiver resolves one to the other."""
    ids: set[str] = set()
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str):
                ids.add(node["$id"])
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return ids, refs
