"""The simulated city: Seoul's districts, and a city that is the same for a seed."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from console.sim import seoul
from console.sim.city import build_city
from protocols import codec
from protocols.geo import haversine_m
from protocols.schemas import Shelter, UnitKind


def test_twenty_five_districts_with_names_and_sizes() -> None:
    assert len(seoul.DISTRICTS) == 25
    assert len({d.name for d in seoul.DISTRICTS}) == 25
    assert all(d.name.endswith("-gu") and d.korean.endswith("구") for d in seoul.DISTRICTS)
    gangnam = seoul.BY_NAME["Gangnam-gu"]
    assert gangnam.korean == "강남구" and gangnam.slug == "gangnam"
    assert 2000 < gangnam.radius_m < 5000


@pytest.mark.parametrize(
    ("lat", "lon", "district"),
    [
        (37.5665, 126.9780, "Jung-gu"),  # City Hall
        (37.5133, 127.1001, "Songpa-gu"),  # Jamsil
        (37.5563, 126.9236, "Mapo-gu"),  # Hongik Univ. station
        (37.6566, 127.0632, "Nowon-gu"),  # Nowon station
        (37.5088, 127.0631, "Gangnam-gu"),  # COEX
    ],
)
def test_district_of_landmarks(lat: float, lon: float, district: str) -> None:
    assert seoul.district_of(lat, lon) == district


def test_district_indices_is_vectorised_and_agrees_with_district_of() -> None:
    lats = np.array([37.5665, 37.5133])
    lons = np.array([126.9780, 127.1001])
    names = [seoul.DISTRICTS[i].name for i in seoul.district_indices(lats, lons)]
    assert names == [seoul.district_of(37.5665, 126.9780), seoul.district_of(37.5133, 127.1001)]


def test_same_seed_same_city_other_seed_other_city() -> None:
    a, b, c = build_city(7, 500, 30, 40), build_city(7, 500, 30, 40), build_city(8, 500, 30, 40)
    assert a.camera_ids == b.camera_ids and a.camera_names == b.camera_names
    assert np.array_equal(a.camera_lat, b.camera_lat) and a.responders == b.responders
    assert a.shelters == b.shelters
    assert not np.array_equal(a.camera_lat, c.camera_lat)


def test_cameras_ids_districts_and_positions() -> None:
    city = build_city(1, 3000, 0, 0)
    assert city.camera_count == 3000 and len(set(city.camera_ids)) == 3000
    assert all(re.fullmatch(r"cam-[a-z]+-\d{4,}", i) for i in city.camera_ids)
    assert city.camera_ids[0].startswith("cam-") and "0001" in city.camera_ids[0]
    # Filed under the district their position is in, so the core agrees on the name.
    located = seoul.district_indices(city.camera_lat, city.camera_lon)
    assert np.array_equal(located, city.camera_district)
    assert set(city.camera_district.tolist()) == set(range(25))  # every district has cameras
    assert seoul.LAT_MIN <= city.camera_lat.min() and city.camera_lat.max() <= seoul.LAT_MAX
    # Denser near the centres: half the cameras within 0.6 radius of their district's centre.
    centre_lat = np.array([d.lat for d in seoul.DISTRICTS])[city.camera_district]
    centre_lon = np.array([d.lon for d in seoul.DISTRICTS])[city.camera_district]
    radius = np.array([d.radius_m for d in seoul.DISTRICTS])[city.camera_district]
    dist = np.hypot(
        (city.camera_lat - centre_lat) * seoul.M_PER_DEG_LAT,
        (city.camera_lon - centre_lon) * seoul.M_PER_DEG_LON,
    )
    assert np.median(dist / radius) < 0.6


def test_responders_of_three_kinds_and_shelters() -> None:
    city = build_city(7, 100, 60, 200)
    kinds = [u.kind for u in city.responders]
    assert len(kinds) == 60 and set(kinds) == set(UnitKind)
    assert city.responders[0].id == "unit-police-01"
    assert all(re.fullmatch(r"unit-(police|scout|guard)-\d{2,}", u.id) for u in city.responders)
    assert len(city.shelters) == 200 and len({s.id for s in city.shelters}) == 200
    assert {s.kind for s in city.shelters} == {"24h-store", "police-box", "safe-house"}
    for shelter in city.shelters:
        assert isinstance(shelter, Shelter)
        assert codec.decode(codec.encode(shelter), Shelter) == shelter  # valid on the wire
        assert shelter.district == seoul.district_of(shelter.lat, shelter.lon)


def test_empty_city() -> None:
    city = build_city(7, 0, 0, 0)
    assert city.camera_count == 0 and city.responders == () and city.shelters == ()


def test_a_hundred_thousand_cameras_in_well_under_a_second() -> None:
    began = time.perf_counter()
    city = build_city(7, 100_000, 60, 200)
    assert time.perf_counter() - began < 1.0
    assert city.camera_count == 100_000 and len(set(city.camera_ids)) == 100_000


def test_cameras_near_is_nearest_first() -> None:
    city = build_city(7, 5000, 0, 0)
    lat, lon = float(city.camera_lat[10]), float(city.camera_lon[10])
    near = city.cameras_near(lat, lon, 400.0)
    assert near[0] == 10
    d = [haversine_m(lat, lon, city.camera_lat[i], city.camera_lon[i]) for i in near]
    assert d == sorted(d) and d[-1] <= 405.0
