"""Screenshots of a stroke code for docs/: the stroke-code screen (the plain CT with the prior
over the CTA's MIP slabs), ASPECTS, the mirrored region and the CTA MIP slabs in the MPR. Run
under a real X server (Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/stroke_screenshots.py [OUT]

The studies are the generated head phantom (with a left MCA infarct and its CTA) of one patient,
today's and a prior: no clinical stroke CT with a permissive licence could be obtained.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.imports.importer import import_paths  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.tasks import Progress  # noqa: E402
from app.ui.annotations import Annotation  # noqa: E402
from app.ui.main import application  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.workflow.aspects import Guide  # noqa: E402
from docs.make_screenshots import grab_screen, loaded, wait, wait_until  # noqa: E402
from tests.workflow.stroke_studies import stroke_study  # noqa: E402

#: The ganglionic level of the phantom (z = +8 mm, the infarct's centre): slice 33 of 60.
GANGLIONIC = 33


def planes_settled(mpr) -> bool:
    """The planes on show are drawn at full quality and nothing more is being made."""
    return (mpr.source is not None and mpr._queue.idle and all(
        mpr.views[p].full_quality and mpr.views[p].shown is not None for p in mpr.planes))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = (stroke_study(root / "today", date="20261201", seed=81, size=400,
                              slices=60, pixel_spacing=0.55)
                 + stroke_study(root / "prior", date="20250310", seed=82, cta=False, size=400,
                                slices=60, pixel_spacing=0.55, infarct=False))
        store = Store(root / "home")
        import_paths(store, [str(p) for p in files], Progress("screenshots"))
        window = MainWindow(store)
        window.resize(1600, 950)
        window.show()
        wait(500)
        today = max(store.studies(), key=lambda s: s.study_date).study_instance_uid
        viewer = window.open_study(today)
        wait_until(lambda: loaded(viewer))
        slabs = viewer.slabs
        wait_until(lambda: slabs is not None and planes_settled(slabs))
        first = viewer.visible_viewports()[0]
        first.show_slice(GANGLIONIC)
        wait(800)
        grab_screen(window, out / "stroke-layout-with-prior.png")

        viewer.set_tool("aspects")
        viewer.toggle_maximised(first)
        wait(300)
        volume = first.volume
        assert volume is not None
        width = volume.shape[2] * volume.spacing[2]
        viewer.aspects_tool.guides[first.session.series.series_instance_uid] = Guide(
            width / 2, volume.shape[1] * volume.spacing[1] / 2 + 4, 64.0)
        for code in ("M2", "I", "L"):
            viewer.aspects_tool.toggle("left", code, volume.slices[GANGLIONIC].sop_instance_uid)
        wait(300)
        window.grab().save(str(out / "stroke-aspects.png"))

        viewer.set_tool("ellipse")
        session = first.session
        centre = width / 2
        viewer.midline_tool.set_midline(session.series.series_instance_uid,
                                        (centre, 10.0), (centre, width - 10.0))
        session.annotations.setdefault(GANGLIONIC, []).append(
            Annotation("ellipse", [(centre + 36, centre - 10), (centre + 54, centre + 16)]))
        session.annotations[GANGLIONIC].append(
            Annotation("arrow", [(centre + 78, centre + 52), (centre + 54, centre + 19)]))
        viewer.key_images.append(volume.slices[GANGLIONIC].sop_instance_uid)
        first.show_slice(GANGLIONIC)
        first._sync_items()
        wait(300)
        window.grab().save(str(out / "stroke-mirrored-region.png"))

        viewer.toggle_maximised(first)
        viewer.show_stage(2)
        mpr = viewer.mpr
        wait_until(lambda: mpr is not None and planes_settled(mpr))
        wait(800)
        grab_screen(window, out / "stroke-cta-mip-slabs.png")
        window.close()
    app.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
