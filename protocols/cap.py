"""OASIS CAP 1.2 ``<alert>`` XML → :class:`PublicAlert`.

Parsed with ``defusedxml`` and refused, with a reason, when it is not XML,
declares a DTD (which is how entity-expansion bombs and external entities
arrive), uses another namespace than CAP 1.2, misses a required element or
value, or is larger than :data:`MAX_CAP_BYTES` (checked before parsing).

Only ``status`` Actual alerts are acted upon; Exercise, System, Test and Draft
are ignored (counted). ``msgType`` Alert, Update and Cancel become a
:class:`PublicAlert`; Update and Cancel must carry ``references`` (the caller
finds the earlier alert by ``(sender, identifier)``). Ack and Error are ignored.

Priority from ``urgency`` / ``severity`` / ``certainty``, first row that applies
(Unknown counts as: severity Moderate, urgency Expected, certainty Possible):

==== =========================================================================
P4   urgency Past, or certainty Unlikely, or severity Minor
P1   severity Extreme/Severe, urgency Immediate, certainty Observed/Likely
P2   severity Extreme/Severe, urgency Immediate/Expected
P2   severity Moderate, urgency Immediate, certainty Observed/Likely
P3   everything else
==== =========================================================================

With several ``<info>`` blocks (one per language) the most urgent one sets
the priority; the text comes from the first block in a preferred language.

Areas → districts: a district is affected when its centroid lies inside a
``<polygon>`` or within a ``<circle>`` (``lat,lon radius_km``), or when a
``<geocode>`` value names it (its name, case-insensitive, or through the
``geocodes`` table: value → district). An area too small to hold a centroid
gets the district whose centroid is nearest its centre, within
``nearest_within_m``. ``lat``/``lon`` is the mean centre of the areas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import msgspec
from defusedxml.ElementTree import fromstring

from protocols.adapters import AdapterResult, emit, ignore, refuse, too_big
from protocols.geo import haversine_m, point_in_polygon
from protocols.public_alert import CapReference, PublicAlert

MAX_CAP_BYTES: Final = 1_000_000
CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
_NS: Final = f"{{{CAP_NS}}}"

Result = AdapterResult[PublicAlert]

_STATUS: Final = ("Actual", "Exercise", "System", "Test", "Draft")
_MSG_TYPES: Final = ("Alert", "Update", "Cancel", "Ack", "Error")
_SCOPES: Final = ("Public", "Restricted", "Private")
_URGENCY: Final = ("Immediate", "Expected", "Future", "Past", "Unknown")
_SEVERITY: Final = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
_CERTAINTY: Final = ("Observed", "Likely", "Possible", "Unlikely", "Unknown", "Very Likely")
_CATEGORIES: Final = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
# Sender and identifier: no spaces, commas or restricted characters (< and &).
_TOKEN: Final = re.compile(r"^[^\s,<&]+$")


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def priority_of(urgency: str, severity: str, certainty: str) -> int:
    """The table in the module docstring."""
    u = "Expected" if urgency == "Unknown" else urgency
    s = "Moderate" if severity == "Unknown" else severity
    c = {"Unknown": "Possible", "Very Likely": "Likely"}.get(certainty, certainty)
    if u == "Past" or c == "Unlikely" or s == "Minor":
        return 4
    grave = s in ("Extreme", "Severe")
    sure = c in ("Observed", "Likely")
    if grave and u == "Immediate" and sure:
        return 1
    if grave and u in ("Immediate", "Expected"):
        return 2
    if s == "Moderate" and u == "Immediate" and sure:
        return 2
    return 3


def parse(
    payload: bytes,
    districts: Mapping[str, tuple[float, float]],
    *,
    geocodes: Mapping[str, str] | None = None,
    languages: Sequence[str] = ("ko", "en"),
    nearest_within_m: float = 5000.0,
    max_bytes: int = MAX_CAP_BYTES,
) -> Result:
    """Parse one CAP 1.2 document. Never raises."""
    limit = too_big(payload, max_bytes)
    if limit is not None:
        return refuse(f"CAP: {limit}")
    if not payload.strip():
        return refuse("CAP: empty document")
    try:
        root = fromstring(payload, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        return refuse("CAP: document type declarations (DTD) are refused")
    except defusedxml.EntitiesForbidden:
        return refuse("CAP: entity declarations are refused")
    except defusedxml.ExternalReferenceForbidden:
        return refuse("CAP: external references are refused")
    except defusedxml.DefusedXmlException as exc:
        return refuse(f"CAP: unsafe XML refused: {exc}")
    except ParseError as exc:
        return refuse(f"CAP: not well-formed XML: {exc}")
    except (ValueError, TypeError, RecursionError) as exc:
        return refuse(f"CAP: not XML: {exc}"[:300])
    try:
        return _alert(root, districts, geocodes or {}, languages, nearest_within_m)
    except _Refused as exc:
        return refuse(f"CAP: {exc.reason}")
    except Exception as exc:  # a bug must not stop the gateway; say where it was
        return refuse(f"CAP: internal error in the CAP parser: {exc!r}")


# --- the document ----------------------------------------------------------------------


def _alert(
    root: Element,
    districts: Mapping[str, tuple[float, float]],
    geocodes: Mapping[str, str],
    languages: Sequence[str],
    nearest_within_m: float,
) -> Result:
    if not isinstance(root.tag, str) or root.tag != f"{_NS}alert":
        ns, _, local = str(root.tag).lstrip("{").rpartition("}")
        if local == "alert" and ns:
            raise _Refused(f"namespace '{ns[:100]}' is not CAP 1.2 ('{CAP_NS}')")
        raise _Refused(f"root element is <{str(root.tag)[:100]}>, not a CAP 1.2 <alert>")
    identifier = _token(root, "identifier")
    sender = _token(root, "sender")
    sent = _time(_required(root, "sent"), "sent")
    status = _choice(root, "status", _STATUS)
    msg_type = _choice(root, "msgType", _MSG_TYPES)
    _choice(root, "scope", _SCOPES)
    references = _references(_optional(root, "references"))
    if status != "Actual":
        return ignore(f"CAP {identifier}: status {status}, not acted upon")
    if msg_type not in ("Alert", "Update", "Cancel"):
        return ignore(f"CAP {identifier}: msgType {msg_type}, not acted upon")
    if msg_type != "Alert" and not references:
        raise _Refused(f"{msg_type} {identifier} has no <references> to the alert it changes")
    infos = [_info(el) for el in root.findall(f"{_NS}info")]
    priority = min((i.priority for i in infos), default=4)
    text = _preferred(infos, languages)
    centres: list[tuple[float, float]] = []
    affected: dict[str, None] = {}
    descs: list[str] = []
    for info in infos:
        for area in info.element.findall(f"{_NS}area"):
            descs.append(_required(area, "areaDesc"))
            names, area_centres = _area(area, districts, geocodes, nearest_within_m)
            affected.update(dict.fromkeys(names))
            centres.extend(area_centres)
    lat = lon = None
    if centres:
        lat = sum(c[0] for c in centres) / len(centres)
        lon = sum(c[1] for c in centres) / len(centres)
    expires = [i.expires for i in infos if i.expires is not None]
    fields = {
        "identifier": identifier,
        "sender": sender,
        "sent": sent,
        "msg_type": msg_type,
        "priority": priority,
        "headline": (text.headline if text else "")[:200],
        "description": (text.description if text else "")[:4000],
        "event": (text.event if text else "")[:200],
        "area_desc": "; ".join(dict.fromkeys(descs))[:200],
        "districts": tuple(affected),
        "lat": lat,
        "lon": lon,
        "expires": max(expires) if expires else None,
        "references": references,
        "urgency": text.urgency if text else "",
        "severity": text.severity if text else "",
        "certainty": text.certainty if text else "",
    }
    return emit(msgspec.convert(fields, PublicAlert))


class _Info:
    __slots__ = (
        "certainty",
        "description",
        "element",
        "event",
        "expires",
        "headline",
        "language",
        "priority",
        "severity",
        "urgency",
    )

    def __init__(self, element: Element) -> None:
        self.element = element
        if not element.findall(f"{_NS}category"):
            raise _Refused("<info> has no <category>")
        for cat in element.findall(f"{_NS}category"):
            if (cat.text or "").strip() not in _CATEGORIES:
                raise _Refused(f"<category> {(cat.text or '').strip()[:40]!r} is not a CAP value")
        self.language = (_optional(element, "language") or "en-US").lower()
        self.event = _required(element, "event")
        self.urgency = _choice(element, "urgency", _URGENCY)
        self.severity = _choice(element, "severity", _SEVERITY)
        self.certainty = _choice(element, "certainty", _CERTAINTY)
        self.headline = _optional(element, "headline") or ""
        self.description = " ".join((_optional(element, "description") or "").split())
        expires = _optional(element, "expires")
        self.expires = _time(expires, "expires") if expires else None
        self.priority = priority_of(self.urgency, self.severity, self.certainty)


def _info(element: Element) -> _Info:
    return _Info(element)


def _preferred(infos: list[_Info], languages: Sequence[str]) -> _Info | None:
    for lang in languages:
        for info in infos:
            if info.language == lang.lower() or info.language.startswith(f"{lang.lower()}-"):
                return info
    return infos[0] if infos else None


# --- elements --------------------------------------------------------------------------


def _optional(parent: Element, name: str) -> str | None:
    el = parent.find(f"{_NS}{name}")
    if el is None:
        return None
    if len(el):
        raise _Refused(f"<{name}> must hold text, not elements")
    return (el.text or "").strip()


def _required(parent: Element, name: str) -> str:
    value = _optional(parent, name)
    if not value:
        where = str(parent.tag).rpartition("}")[2]
        raise _Refused(f"<{where}> is missing the required <{name}>")
    return value


def _token(parent: Element, name: str) -> str:
    value = _required(parent, name)
    if not _TOKEN.match(value) or len(value) > 500:
        raise _Refused(f"<{name}> {value[:60]!r} contains spaces or commas, or is too long")
    return value


def _choice(parent: Element, name: str, allowed: Iterable[str]) -> str:
    value = _required(parent, name)
    if value not in allowed:
        raise _Refused(f"<{name}> {value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def _time(text: str, name: str) -> float:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _Refused(f"<{name}> {text[:40]!r} is not a CAP date-time") from None
    if when.tzinfo is None:
        raise _Refused(f"<{name}> {text[:40]!r} has no time zone offset")
    return when.timestamp()


def _references(text: str | None) -> tuple[CapReference, ...]:
    if not text:
        return ()
    refs = []
    for triple in text.split()[:100]:
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            raise _Refused(f"<references> entry {triple[:80]!r} is not sender,identifier,sent")
        refs.append(
            CapReference(sender=parts[0], identifier=parts[1], sent=_time(parts[2], "references"))
        )
    return tuple(refs)


# --- areas -----------------------------------------------------------------------------


def _pair(text: str, what: str) -> tuple[float, float]:
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        raise _Refused(f"<{what}> point {text[:40]!r} is not 'lat,lon'") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise _Refused(f"<{what}> point {text[:40]!r} is off the globe")
    return lat, lon


def _polygon(text: str) -> list[tuple[float, float]]:
    points = [_pair(p, "polygon") for p in text.split()[:10_000]]
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(set(points)) < 3:
        raise _Refused("<polygon> needs at least three distinct points")
    return points


def _circle(text: str) -> tuple[float, float, float]:
    try:
        centre, radius_s = text.split()
        radius_km = float(radius_s)
    except ValueError:
        raise _Refused(f"<circle> {text[:40]!r} is not 'lat,lon radius_km'") from None
    if not (math.isfinite(radius_km) and 0.0 <= radius_km <= 20_038.0):
        raise _Refused(f"<circle> radius {radius_s[:20]!r} km is not a distance on Earth")
    lat, lon = _pair(centre, "circle")
    return lat, lon, radius_km * 1000.0


def _nearest(
    lat: float, lon: float, districts: Mapping[str, tuple[float, float]], within_m: float
) -> str | None:
    best: tuple[float, str] | None = None
    for name, (dlat, dlon) in districts.items():
        d = haversine_m(lat, lon, dlat, dlon)
        if d <= within_m and (best is None or d < best[0]):
            best = (d, name)
    return best[1] if best else None


def _area(
    area: Element,
    districts: Mapping[str, tuple[float, float]],
    geocodes: Mapping[str, str],
    within_m: float,
) -> tuple[list[str], list[tuple[float, float]]]:
    """(districts hit, centres of the area's shapes) of one ``<area>``."""
    names: list[str] = []
    centres: list[tuple[float, float]] = []
    for el in area.findall(f"{_NS}polygon"):
        ring = _polygon(el.text or "")
        centre = (sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))
        centres.append(centre)
        inside = [n for n, (la, lo) in districts.items() if point_in_polygon(la, lo, ring)]
        names.extend(inside or _listed(_nearest(*centre, districts, within_m)))
    for el in area.findall(f"{_NS}circle"):
        lat, lon, radius_m = _circle(el.text or "")
        centres.append((lat, lon))
        inside = [
            n for n, (la, lo) in districts.items() if haversine_m(lat, lon, la, lo) <= radius_m
        ]
        names.extend(inside or _listed(_nearest(lat, lon, districts, within_m)))
    by_lower = {name.lower(): name for name in districts}
    named: list[str] = []
    for geo in area.findall(f"{_NS}geocode"):
        _required(geo, "valueName")
        value = _required(geo, "value")
        name = geocodes.get(value) or by_lower.get(value.lower())
        if name is not None and name in districts:
            named.append(name)
    names.extend(named)
    if not centres:
        centres.extend(districts[n] for n in named)
    return names, centres


def _listed(name: str | None) -> list[str]:
    return [name] if name is not None else []
