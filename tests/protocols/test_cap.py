"""CAP 1.2 parser: the specification's appendix examples, Seoul alerts, and hostile XML."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.sim.seoul import DISTRICTS as SEOUL
from protocols import cap
from protocols.cap import parse, priority_of
from protocols.public_alert import CapReference, PublicAlert

DISTRICTS = {d.name: (d.lat, d.lon) for d in SEOUL}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def doc(body: str, ns: str = cap.CAP_NS) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="{ns}">{body}</alert>'.encode()


HEAD = (
    "<identifier>SMPA-2024-0601-001</identifier><sender>alert@smpa.go.kr</sender>"
    "<sent>2024-06-01T22:10:00+09:00</sent><status>Actual</status>"
    "<msgType>Alert</msgType><scope>Public</scope>"
)


def info(area: str = "", **values: str) -> str:
    v = {
        "category": "Safety",
        "event": "Assault suspect at large",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Likely",
        "headline": "Suspect seen near Jongno 3-ga station",
    }
    v.update(values)
    inner = "".join(f"<{k}>{x}</{k}>" for k, x in v.items() if x != "-")
    return f"<info>{inner}{area}</info>"


# --- the CAP 1.2 specification's Appendix A examples, field for field -----------------

HOMELAND = doc(
    "<identifier>43b080713727</identifier><sender>hsas@dhs.gov</sender>"
    "<sent>2003-04-02T14:39:01-05:00</sent><status>Actual</status><msgType>Alert</msgType>"
    "<scope>Public</scope><info><category>Security</category>"
    "<event>Homeland Security Advisory System Update</event><urgency>Immediate</urgency>"
    "<severity>Severe</severity><certainty>Likely</certainty>"
    "<senderName>U.S. Government, Department of Homeland Security</senderName>"
    "<headline>Homeland Security Sets Code ORANGE</headline>"
    "<description>The Department of Homeland Security has elevated the threat level to"
    " ORANGE / High.</description>"
    "<instruction>Consider agency-specific Protective Measures.</instruction>"
    "<web>http://www.dhs.gov/dhspublic/display?theme=29</web>"
    "<parameter><valueName>HSAS</valueName><value>ORANGE</value></parameter>"
    "<resource><resourceDesc>Image file (GIF)</resourceDesc><mimeType>image/gif</mimeType>"
    "<uri>http://www.dhs.gov/dhspublic/getAdvisoryImage</uri></resource>"
    "<area><areaDesc>U.S. nationwide and interests worldwide</areaDesc></area></info>"
)

THUNDERSTORM = doc(
    "<identifier>KSTO1055887203</identifier><sender>KSTO@NWS.NOAA.GOV</sender>"
    "<sent>2003-06-17T14:57:00-07:00</sent><status>Actual</status><msgType>Alert</msgType>"
    "<scope>Public</scope><info><category>Met</category><event>SEVERE THUNDERSTORM</event>"
    "<responseType>Shelter</responseType><urgency>Immediate</urgency>"
    "<severity>Severe</severity><certainty>Observed</certainty>"
    "<eventCode><valueName>SAME</valueName><value>SVR</value></eventCode>"
    "<expires>2003-06-17T16:00:00-07:00</expires>"
    "<senderName>NATIONAL WEATHER SERVICE SACRAMENTO CA</senderName>"
    "<headline>SEVERE THUNDERSTORM WARNING</headline>"
    "<description> AT 254 PM PDT...A SEVERE THUNDERSTORM OVER SOUTH CENTRAL ALPINE\n"
    "   COUNTY...MOVING SOUTHWEST AT 5 MPH.</description>"
    "<instruction>TAKE COVER IN A SUBSTANTIAL SHELTER UNTIL THE STORM PASSES.</instruction>"
    "<contact>BARUFFALDI/JUSKIE</contact><area><areaDesc>EXTREME NORTH CENTRAL TUOLUMNE"
    " COUNTY IN CALIFORNIA</areaDesc>"
    "<polygon>38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14</polygon>"
    "<geocode><valueName>SAME</valueName><value>006109</value></geocode>"
    "<geocode><valueName>SAME</valueName><value>006009</value></geocode>"
    "</area></info>"
)

EARTHQUAKE = doc(
    "<identifier>TRI13970876.2</identifier><sender>trinet@caltech.edu</sender>"
    "<sent>2003-06-11T20:56:00-07:00</sent><status>Actual</status><msgType>Update</msgType>"
    "<scope>Public</scope>"
    "<references>trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00</references>"
    "<info><category>Geo</category><event>Earthquake</event><urgency>Past</urgency>"
    "<severity>Minor</severity><certainty>Observed</certainty>"
    "<senderName>Southern California Seismic Network (TriNet)</senderName>"
    "<headline>EQ 3.4 Imperial County CA</headline>"
    "<description>A minor earthquake measuring 3.4 occurred near Brawley.</description>"
    "<web>http://www.trinet.org/scsn/scsn.html</web>"
    "<parameter><valueName>Magnitude</valueName><value>3.4 Ml</value></parameter>"
    "<area><areaDesc>1 mi. WSW of Brawley, CA</areaDesc>"
    "<circle>32.9525,-115.5527 0</circle></area></info>"
)

AMBER = doc(
    "<identifier>KAR0-0306112239-SW</identifier><sender>KARO@CLETS.DOJ.CA.GOV</sender>"
    "<sent>2003-06-11T22:39:00-07:00</sent><status>Actual</status><msgType>Alert</msgType>"
    "<source>SW</source><scope>Public</scope>"
    "<info><language>en-US</language><category>Rescue</category><event>Child Abduction</event>"
    "<urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>"
    "<eventCode><valueName>SAME</valueName><value>CAE</value></eventCode>"
    "<senderName>Los Angeles Police Dept - LAPD</senderName>"
    "<headline>Amber Alert in Los Angeles County</headline>"
    "<description>VICTIM(S): KHAYRI DOE JR. VEHICLE: 81' BUICK 2-DR, BLUE.</description>"
    "<area><areaDesc>Los Angeles County</areaDesc>"
    "<geocode><valueName>SAME</valueName><value>006037</value></geocode></area></info>"
    "<info><language>es-US</language><category>Rescue</category>"
    "<event>Abducción de Niño</event><urgency>Immediate</urgency><severity>Severe</severity>"
    "<certainty>Likely</certainty><headline>Alerta Amber en el condado de Los Ángeles</headline>"
    "<area><areaDesc>condado de Los Ángeles</areaDesc>"
    "<geocode><valueName>SAME</valueName><value>006037</value></geocode></area></info>"
)


def one(payload: bytes, **kwargs: object) -> PublicAlert:
    result = parse(payload, DISTRICTS, **kwargs)  # type: ignore[arg-type]
    assert result.error is None and result.ignored is None, (result.error, result.ignored)
    [alert] = result.messages
    return msgspec.convert(msgspec.to_builtins(alert), PublicAlert)  # valid by its own schema


def test_homeland_security_example() -> None:
    alert = one(HOMELAND)
    assert alert.identifier == "43b080713727" and alert.sender == "hsas@dhs.gov"
    assert alert.sent == ts("2003-04-02T14:39:01-05:00")
    assert alert.msg_type == "Alert" and alert.priority == 1  # Immediate, Severe, Likely
    assert alert.headline == "Homeland Security Sets Code ORANGE"
    assert alert.event == "Homeland Security Advisory System Update"
    assert alert.area_desc == "U.S. nationwide and interests worldwide"
    assert alert.districts == () and alert.lat is None and alert.expires is None


def test_thunderstorm_example() -> None:
    alert = one(THUNDERSTORM)
    assert alert.identifier == "KSTO1055887203" and alert.priority == 1  # Observed
    assert alert.expires == ts("2003-06-17T16:00:00-07:00")
    assert alert.description.startswith("AT 254 PM PDT...A SEVERE THUNDERSTORM OVER SOUTH")
    assert "\n" not in alert.description
    assert alert.districts == ()  # California, far from every Seoul district
    assert alert.lat is not None and alert.lon is not None
    assert abs(alert.lat - 38.4875) < 1e-9 and abs(alert.lon - (-119.93)) < 1e-9


def test_earthquake_update_example() -> None:
    alert = one(EARTHQUAKE)
    assert alert.msg_type == "Update" and alert.priority == 4  # Past, Minor
    assert alert.references == (
        CapReference(
            sender="trinet@caltech.edu",
            identifier="TRI13970876.1",
            sent=ts("2003-06-11T20:30:00-07:00"),
        ),
    )
    assert alert.references[0].key == ("trinet@caltech.edu", "TRI13970876.1")
    assert (alert.lat, alert.lon) == (32.9525, -115.5527)


def test_amber_alert_example_with_two_languages() -> None:
    alert = one(AMBER)
    assert alert.priority == 1 and alert.headline == "Amber Alert in Los Angeles County"
    spanish = one(AMBER, languages=("es",))
    assert spanish.headline == "Alerta Amber en el condado de Los Ángeles"
    assert one(AMBER, geocodes={"006037": "Jung-gu"}).districts == ("Jung-gu",)


# --- Seoul --------------------------------------------------------------------------


def test_polygon_covering_central_seoul_names_its_districts() -> None:
    # A box around Jongno-gu's and Jung-gu's centroids.
    ring = "37.55,126.96 37.61,126.96 37.61,127.01 37.55,127.01 37.55,126.96"
    area = f"<area><areaDesc>Jongno and Jung</areaDesc><polygon>{ring}</polygon></area>"
    alert = one(doc(HEAD + info(area)))
    assert set(alert.districts) == {"Jongno-gu", "Jung-gu"}
    assert alert.priority == 1 and alert.key == ("alert@smpa.go.kr", "SMPA-2024-0601-001")
    assert alert.sent == ts("2024-06-01T22:10:00+09:00")


def test_small_polygon_gets_the_nearest_district() -> None:
    ring = "37.5040,127.0590 37.5060,127.0590 37.5060,127.0620 37.5040,127.0620"  # Samseong
    area = f"<area><areaDesc>Samseong-dong block</areaDesc><polygon>{ring}</polygon></area>"
    alert = one(doc(HEAD + info(area)))
    assert alert.districts == ("Gangnam-gu",)
    assert alert.lat is not None and abs(alert.lat - 37.505) < 1e-9


def test_circle_in_km_and_geocode_by_name() -> None:
    circle = "<area><areaDesc>Mapo</areaDesc><circle>37.5594,126.9085 3</circle></area>"
    alert = one(doc(HEAD + info(circle)))
    assert "Mapo-gu" in alert.districts and "Gangnam-gu" not in alert.districts
    assert (alert.lat, alert.lon) == (37.5594, 126.9085)
    geo = (
        "<area><areaDesc>Songpa</areaDesc><geocode><valueName>district</valueName>"
        "<value>songpa-gu</value></geocode><geocode><valueName>KR</valueName>"
        "<value>11740</value></geocode></area>"
    )
    alert = one(doc(HEAD + info(geo)), geocodes={"11740": "Gangdong-gu"})
    assert alert.districts == ("Songpa-gu", "Gangdong-gu")
    assert alert.lat is not None and 37.50 < alert.lat < 37.56


def test_cancel_refers_to_the_alert_it_withdraws() -> None:
    head = HEAD.replace("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>")
    refs = (
        "<references>alert@smpa.go.kr,SMPA-2024-0531-009,2024-05-31T21:00:00+09:00 "
        "alert@smpa.go.kr,SMPA-2024-0531-010,2024-05-31T21:30:00+09:00</references>"
    )
    alert = one(doc(head + refs))  # a Cancel needs no <info>
    assert alert.msg_type == "Cancel" and alert.priority == 4
    assert [r.identifier for r in alert.references] == ["SMPA-2024-0531-009", "SMPA-2024-0531-010"]
    missing = parse(doc(head), DISTRICTS)
    assert missing.error and "no <references>" in missing.error


def test_exercises_tests_acks_are_ignored() -> None:
    for old, new in (
        ("<status>Actual</status>", "<status>Exercise</status>"),
        ("<status>Actual</status>", "<status>Test</status>"),
        ("<msgType>Alert</msgType>", "<msgType>Ack</msgType>"),
    ):
        result = parse(doc(HEAD.replace(old, new) + info()), DISTRICTS)
        assert result.messages == [] and result.error is None and result.ignored


def test_priority_table() -> None:
    assert priority_of("Immediate", "Extreme", "Observed") == 1
    assert priority_of("Immediate", "Severe", "Likely") == 1
    assert priority_of("Immediate", "Severe", "Possible") == 2
    assert priority_of("Expected", "Extreme", "Observed") == 2
    assert priority_of("Immediate", "Moderate", "Observed") == 2
    assert priority_of("Expected", "Moderate", "Likely") == 3
    assert priority_of("Future", "Severe", "Likely") == 3
    assert priority_of("Unknown", "Unknown", "Unknown") == 3
    assert priority_of("Past", "Extreme", "Observed") == 4
    assert priority_of("Immediate", "Extreme", "Unlikely") == 4
    assert priority_of("Immediate", "Minor", "Observed") == 4


def test_most_urgent_info_sets_the_priority() -> None:
    body = HEAD + info(urgency="Future", severity="Moderate") + info(certainty="Observed")
    assert one(doc(body)).priority == 1


# --- refusals -----------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://attacker.invalid/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>"""


def refused(payload: bytes) -> str:
    result = parse(payload, DISTRICTS)
    assert result.messages == [] and result.error is not None, payload[:200]
    assert "internal error" not in result.error
    return result.error


def test_hostile_xml_is_refused() -> None:
    assert "DTD" in refused(BILLION_LAUGHS)
    assert "DTD" in refused(XXE)
    assert "DTD" in refused(EXTERNAL_DTD)


def test_wrong_documents_are_refused_with_a_reason() -> None:
    assert "not well-formed" in refused(b"this is not xml")
    assert "not well-formed" in refused(doc(HEAD + info())[:-5])
    assert "empty" in refused(b"  ")
    assert "CAP 1.2" in refused(doc(HEAD + info(), ns="urn:oasis:names:tc:emergency:cap:1.1"))
    assert "not a CAP 1.2 <alert>" in refused(b"<alert><identifier>x</identifier></alert>")
    assert "not a CAP 1.2 <alert>" in refused(b'<feed xmlns="http://www.w3.org/2005/Atom"/>')
    assert "exceeds" in refused(b" " * (cap.MAX_CAP_BYTES + 1))
    assert "exceeds" in refused(b"<" * (10 << 20))


def test_missing_and_invalid_elements_are_named() -> None:
    cases = {
        HEAD.replace("<identifier>SMPA-2024-0601-001</identifier>", ""): "<identifier>",
        HEAD.replace("alert@smpa.go.kr", ""): "<sender>",
        HEAD.replace("alert@smpa.go.kr", "alert smpa"): "<sender>",
        HEAD.replace("2024-06-01T22:10:00+09:00", "yesterday"): "<sent>",
        HEAD.replace("2024-06-01T22:10:00+09:00", "2024-06-01T22:10:00"): "time zone",
        HEAD.replace("Actual", "Real"): "<status>",
        HEAD.replace("<scope>Public</scope>", ""): "<scope>",
        HEAD.replace("<msgType>Alert</msgType>", "<msgType><b/></msgType>"): "text",
    }
    for head, words in cases.items():
        assert words in refused(doc(head + info())), words
    info_cases = {
        info(category="-"): "<category>",
        info(category="Weather"): "<category>",
        info(event="-"): "<event>",
        info(urgency="Now"): "<urgency>",
        info(severity="-"): "<severity>",
        info(certainty="Sure"): "<certainty>",
        info("<area><polygon>37.5,127.0 37.6,127.0 37.6,127.1</polygon></area>"): "<areaDesc>",
        info("<area><areaDesc>x</areaDesc><polygon>37.5,127 37.6,127</polygon></area>"): "three",
        info("<area><areaDesc>x</areaDesc><polygon>95,127 37,127 37,128</polygon></area>"): "globe",
        info("<area><areaDesc>x</areaDesc><circle>37.5,127.0</circle></area>"): "radius_km",
        info("<area><areaDesc>x</areaDesc><circle>37.5,127.0 -1</circle></area>"): "radius",
        info("<area><areaDesc>x</areaDesc><circle>37.5,127.0 inf</circle></area>"): "radius",
        info("<area><areaDesc>x</areaDesc><geocode><value>1</value></geocode></area>"): "valueName",
        info(expires="soon"): "<expires>",
    }
    for body, words in info_cases.items():
        assert words in refused(doc(HEAD + body)), words
    bad_ref = HEAD.replace("Alert</msgType>", "Update</msgType>") + "<references>a,b</references>"
    assert "sender,identifier,sent" in refused(doc(bad_ref + info()))


def test_long_texts_are_cut_to_the_wire_limits() -> None:
    alert = one(doc(HEAD + info(headline="H" * 500, description="D " * 5000)))
    assert len(alert.headline) == 200 and len(alert.description) <= 4000


# --- fuzzing ------------------------------------------------------------------------

# Deterministic (same examples every run) and quick; no example database on disk.
FUZZ: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}

TAGS = ["identifier", "sender", "sent", "status", "msgType", "scope", "references", "info",
        "category", "event", "urgency", "severity", "certainty", "area", "areaDesc", "polygon",
        "circle", "geocode", "valueName", "value", "expires", "headline"]  # fmt: skip
texts = st.sampled_from(
    ["Actual", "Alert", "Cancel", "Update", "Public", "Immediate", "Severe", "Observed", "Met",
     "2024-06-01T22:10:00+09:00", "37.5,127.0 37.6,127.0 37.6,127.1", "37.5,127 2", "x,y,z",
     "", "a b", "&amp;", "1e999"]
) | st.text(max_size=15)  # fmt: skip
elements = st.recursive(
    st.tuples(st.sampled_from(TAGS), texts).map(lambda t: f"<{t[0]}>{_esc(t[1])}</{t[0]}>"),
    lambda kids: st.tuples(st.sampled_from(TAGS), st.lists(kids, max_size=6)).map(
        lambda t: f"<{t[0]}>{''.join(t[1])}</{t[0]}>"
    ),
    max_leaves=25,
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def _check(payload: bytes) -> None:
    result = parse(payload, DISTRICTS)
    assert (result.error is None) or (not result.messages)
    assert result.error is None or "internal error" not in result.error, result.error
    for alert in result.messages:
        msgspec.convert(msgspec.to_builtins(alert), PublicAlert)


@settings(max_examples=100, **FUZZ)
@given(payload=st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(payload: bytes) -> None:
    _check(payload)


@settings(max_examples=120, **FUZZ)
@given(body=st.lists(elements, max_size=10), head=st.booleans())
def test_fuzz_xml_structures_never_raise(body: list[str], head: bool) -> None:
    _check(doc((HEAD if head else "") + "".join(body)))
