"""A district's cameras on the wire: retained pages of ``CAMERA_PAGE`` cells.

One place for the page size, the page count and the per-status counts, so the core
(console.core.publisher), the engine's whole-district list and the benchmarks that stand
in for the core all build the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from protocols.schemas import CameraCell, CameraStatus, DistrictCameras

CAMERA_PAGE: Final = 250  # cameras per retained page: ~25 KB of MessagePack


def page_count(cameras: int) -> int:
    """Pages for a district of ``cameras``; one (empty) page when it has none."""
    return max(1, -(-cameras // CAMERA_PAGE))


def camera_counts(cells: Iterable[CameraCell]) -> dict[str, int]:
    """DistrictCameras' online/offline/tampered/alarm counts; video loss counts as offline."""
    counts = {"online": 0, "offline": 0, "tampered": 0, "alarm": 0}
    for cam in cells:
        counts["offline" if cam.status is CameraStatus.VIDEO_LOSS else cam.status.value] += 1
    return counts


def camera_page(
    district: str, cells: tuple[CameraCell, ...], page: int, pages: int, ts: float
) -> DistrictCameras:
    """One page message: its cameras and their counts."""
    return DistrictCameras(district=district, ts=ts, cameras=cells, page=page, pages=pages,
                           **camera_counts(cells))  # fmt: skip


def split_pages(whole: DistrictCameras) -> list[DistrictCameras]:
    """A whole district's list as its pages, in order."""
    cells = whole.cameras
    pages = page_count(len(cells))
    return [
        camera_page(
            whole.district, cells[p * CAMERA_PAGE : (p + 1) * CAMERA_PAGE], p, pages, whole.ts
        )
        for p in range(pages)
    ]
