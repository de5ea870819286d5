"""Review material, medveil report, curator decisions, the static report and the review app (no browser)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from typer.testing import CliRunner

from conftest import PHI, phi_dataset
from medveil.cli import app as cli
from medveil.engine import deidentify_dataset
from medveil.errors import MedveilError
from medveil.policy import get_profile
from medveil.pseudonym import load_key
from medveil.review import decisions
from medveil.review.capture import HeaderSnapshot, as_png, crop_regions, pack, png, render_views, unpack
from medveil.review.database import ReviewDatabase, location
from medveil.review.overview import DECISION, load
from medveil.review.static import write_report
from medveil.store.audit import AuditStore
from review_run import PHI_WORDS, make_run

runner = CliRunner()


# -- header differences ------------------------------------------------------------------------


def test_header_changes_name_attributes_and_show_only_output_values(key):
    ds = phi_dataset()
    snapshot = HeaderSnapshot(ds)
    deidentify_dataset(ds, get_profile("basic"), key)
    changes, left_out = snapshot.changes(ds)
    by_name = {c.attribute: c for c in changes}
    assert left_out == 0
    assert by_name["PatientID"].action == "replaced" and by_name["PatientID"].value == str(ds.PatientID)
    assert by_name["InstitutionName"].action == "removed" and by_name["InstitutionName"].value == ""
    assert by_name["PatientIdentityRemoved"].action == "added"
    assert by_name["PatientID"].tag == "(0010,0020)"
    assert "Modality" not in by_name  # kept unchanged: not a difference
    text = json.dumps([c.as_dict() for c in changes])
    for value in PHI.values():
        assert value not in text


def test_header_changes_inside_sequences_use_item_paths(key):
    ds = phi_dataset()
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.ReferencedImageSequence = Sequence([item])
    snapshot = HeaderSnapshot(ds)
    deidentify_dataset(ds, get_profile("basic"), key)
    changes, _ = snapshot.changes(ds)
    nested = [c for c in changes if c.attribute.startswith("ReferencedImageSequence[0].")]
    assert [c.attribute for c in nested] == ["ReferencedImageSequence[0].ReferencedSOPInstanceUID"]
    assert nested[0].value == str(ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID)


def test_header_changes_are_bounded(key):
    ds = phi_dataset()
    snapshot = HeaderSnapshot(ds)
    deidentify_dataset(ds, get_profile("basic"), key)
    changes, left_out = snapshot.changes(ds, limit=3)
    assert len(changes) == 3 and left_out > 0


# -- a real run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def review_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review") / "run")


@pytest.fixture
def fresh_run(review_run, tmp_path):
    return review_run.copy_to(tmp_path / "run")


def _masked(view):
    assert len(view.masked) == 1
    return view.masked[0]


def test_workspace_keeps_review_material_privately(review_run):
    database = location(review_run.workspace)
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    for path in database.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    released = [p for p in review_run.output.rglob("*") if p.is_file()]
    assert released and all(p.suffix == ".dcm" for p in released)


def test_review_material_holds_no_original_header_values(review_run):
    with ReviewDatabase.open(review_run.workspace) as database:
        for state in load(review_run.workspace).files:
            kept = database.file(state.input_ref)
            if state.status == "written":
                assert kept is not None and kept.changes
                text = json.dumps(kept.changes)
                assert not any(word in text for word in PHI_WORDS)


def test_masked_image_has_before_and_after_pictures_that_differ_in_the_box(review_run):
    view = load(review_run.workspace)
    state = _masked(view)
    assert state.pictures and state.boxes
    with ReviewDatabase.open(review_run.workspace) as database:
        pictures = database.pictures(state.input_ref)
        frame = next(p for p in pictures if p.kind == "frame")
        assert frame.boxes and frame.width >= frame.frame_columns
        before = np.asarray(Image.open(io.BytesIO(database.picture_png(state.input_ref, frame.number, "before"))))
        after = np.asarray(Image.open(io.BytesIO(database.picture_png(state.input_ref, frame.number, "after"))))
    scale = frame.width / frame.frame_columns
    x1, y1, x2, y2 = (round(v * scale) for v in frame.boxes[0])
    inside_before, inside_after = before[y1:y2, x1:x2], after[y1:y2, x1:x2]
    assert inside_before.std() > 20  # the burned-in text
    assert inside_after.std() < 5  # masked: one value
    outside = np.ones(before.shape[:2], dtype=bool)
    for box in frame.boxes:  # every masked line, with the padding masking adds
        bx1, by1, bx2, by2 = (round(v * scale) for v in box)
        pad = round(8 * scale)
        outside[max(0, by1 - pad):by2 + pad, max(0, bx1 - pad):bx2 + pad] = False
    assert outside.mean() > 0.25
    assert np.abs(before[outside].astype(int) - after[outside].astype(int)).mean() < 2  # same display outside


def test_pictures_are_kept_packed_and_become_the_same_png_on_demand():
    rng = np.random.default_rng(4)
    before = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    after = before.copy()
    after[10:20, 5:30] = 0  # a masked box
    kept_before, kept_after = pack(before, (240, 160)), pack(after, (240, 160), base=before)
    assert len(kept_after) < len(kept_before) / 4  # the difference is zero outside the box
    shown = np.asarray(Image.open(io.BytesIO(as_png(kept_after, kept_before))))
    assert shown.shape == (160, 240)  # enlarged when the PNG is made, pixels repeated
    assert np.array_equal(shown[::4, ::4], after)
    assert np.array_equal(unpack(kept_before)[0], before) and unpack(kept_before)[1] == (240, 160)
    colour = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(as_png(pack(colour, (8, 8)))))), colour)
    legacy = png(before)  # workspaces of earlier versions hold PNGs: they pass through
    assert as_png(legacy) == legacy
    with pytest.raises(ValueError):
        unpack(kept_after)  # a difference without its before picture


def test_lines_of_one_block_are_one_enlarged_picture():
    lines = [(10, 10, 120, 20), (10, 24, 90, 34), (10, 38, 100, 48)]  # masked line by line
    elsewhere = (300, 400, 340, 410)
    assert crop_regions(lines + [elsewhere], 512, 512) == [(2, 2, 128, 56), (292, 392, 348, 418)]


def test_after_picture_maps_only_the_masked_pixels_and_matches_the_whole_frame_mapping():
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def image(pixels):
        ds = Dataset()
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 0
        ds.PixelData = pixels.tobytes()
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPInstanceUID = generate_uid()
        return ds

    rng = np.random.default_rng(5)
    old = rng.integers(100, 3000, (64, 64)).astype(np.uint16)
    new = old.copy()
    new[5:15, 5:40] = old.min()  # filled with the darkest value the image uses
    region = type("Region", (), {"frame": 0, "x1": 5, "y1": 5, "x2": 40, "y2": 15})
    (view,) = render_views(image(old), image(new), [region])
    before = np.asarray(Image.open(io.BytesIO(view.whole.before_png)))
    after = np.asarray(Image.open(io.BytesIO(view.whole.after_png)))
    scale = view.whole.width // 64
    inside = (slice(5 * scale, 15 * scale), slice(5 * scale, 40 * scale))
    assert after[inside].max() == after[inside].min() == before.min()  # the fill shown as the darkest grey
    outside = np.ones(after.shape, dtype=bool)
    outside[inside] = False
    assert np.array_equal(after[outside], before[outside])


def test_overview_lists_statuses_reasons_and_boxes(review_run):
    view = load(review_run.workspace)
    summary = view.summary_dict()
    assert summary["files"] == 5
    assert summary["run_status"] == {"written": 2, "quarantined": 2, "skipped": 1}
    assert summary["masked_files"] == 1 and summary["masked_boxes"] >= 1
    reasons = " ".join(summary["quarantine_reasons"])
    assert "StudyInstanceUID missing" in reasons and "not a composite instance" in reasons
    assert all(f.in_quarantine for f in view.quarantined)
    assert view.output == str(review_run.output.resolve())


def test_report_json_and_table(review_run):
    result = runner.invoke(cli, ["report", str(review_run.workspace), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {f["status"] for f in data["files"]} == {"written", "quarantined", "skipped"}
    masked = [f for f in data["files"] if f["masked_boxes"]]
    assert len(masked) == 1 and set(masked[0]["masked_boxes"][0]) >= {"box", "source", "reason"}
    assert all("original_path" not in f for f in data["files"])
    table = runner.invoke(cli, ["report", str(review_run.workspace)], env={"COLUMNS": "160"})
    assert table.exit_code == 0
    assert "StudyInstanceUID missing" in table.stdout and "quarantined" in table.stdout
    assert "quarantined copies:" in table.stdout and "nothing quarantined" not in table.stdout
    assert not any(word in table.stdout for word in PHI_WORDS)


def test_report_shows_repairs_by_attribute(fresh_run):
    view = load(fresh_run.workspace)
    ref = next(f.input_ref for f in view.files if f.status == "written")
    repair = json.dumps({"attribute": "OtherPatientIDsSequence[0].PatientID", "action": "removed",
                         "why": "value not valid for its VR"}, sort_keys=True)
    with AuditStore.open(fresh_run.workspace / "audit.sqlite") as store:
        store.add_event(view.run["run_id"], ref, "repair", repair)
    data = json.loads(runner.invoke(cli, ["report", str(fresh_run.workspace), "--json"]).stdout)
    assert data["summary"]["repairs"] == {"OtherPatientIDsSequence[0].PatientID": 1}
    row = next(f for f in data["files"] if f["input_ref"] == ref)
    assert row["repairs"] == [json.loads(repair)]
    table = runner.invoke(cli, ["report", str(fresh_run.workspace), "--notable"], env={"COLUMNS": "200"})
    assert "OtherPatientIDsSequence[0].PatientID" in table.stdout


def test_report_writes_masked_png_privately(review_run, tmp_path):
    target = tmp_path / "masked.png"
    result = runner.invoke(cli, ["report", str(review_run.workspace), "--notable", "--masked-png", str(target)])
    assert result.exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    sheet = Image.open(target)
    assert sheet.width >= 2 * 256 and sheet.height > 256


def test_report_refuses_a_masked_png_inside_the_release_tree(review_run):
    """Its "before" halves are original pixels: inside OUTPUT they would ship with the release."""
    target = review_run.output / "masked.png"
    result = runner.invoke(cli, ["report", str(review_run.workspace), "--masked-png", str(target)])
    assert result.exit_code == 2 and "release tree" in " ".join(result.output.split())
    assert not target.exists()


def test_report_masked_png_is_private_before_its_first_byte_and_never_follows_a_link(review_run, tmp_path):
    existing = tmp_path / "masked.png"
    existing.write_bytes(b"")
    existing.chmod(0o644)
    seen = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd, *args, **kwargs):  # the file's mode when its bytes are about to be written
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fdopen", spying_fdopen)
        result = runner.invoke(cli, ["report", str(review_run.workspace), "--masked-png", str(existing)])
    assert result.exit_code == 0 and seen == [0o600] and stat.S_IMODE(existing.stat().st_mode) == 0o600
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.png"
    link.symlink_to(victim)
    result = runner.invoke(cli, ["report", str(review_run.workspace), "--masked-png", str(link)])
    assert result.exit_code == 2 and "symbolic link" in result.output and victim.read_text() == "keep me"


def test_report_of_a_folder_that_is_no_workspace(tmp_path):
    result = runner.invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a medveil workspace" in " ".join(result.output.split())


# -- decisions --------------------------------------------------------------------------------


def _reviewer(run, **changes):
    settings = dict(key=load_key(run.key_file), policy=get_profile("tcia"), output=str(run.output))
    settings.update(changes)
    return decisions.Reviewer(**settings)


def _ref(view, fragment):
    return next(f.input_ref for f in view.quarantined if fragment in (f.reason or ""))


def test_drop_removes_the_copy_and_records_a_timestamped_decision(fresh_run):
    view = load(fresh_run.workspace)
    ref = _ref(view, "not a composite instance")
    outcome = decisions.drop(fresh_run.workspace, ref)
    assert outcome.decision == "dropped" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", outcome.at)
    assert not (fresh_run.workspace / "quarantine" / f"{ref}.dcm").exists()
    state = load(fresh_run.workspace).file(ref)
    assert state.status == "skipped" and state.run_status == "quarantined"
    assert state.decisions[-1]["decision"] == "dropped" and state.decisions[-1]["at"] == outcome.at
    with pytest.raises(decisions.DecisionError):
        decisions.drop(fresh_run.workspace, ref)  # no longer in quarantine


def test_release_refused_until_fixed_then_released(fresh_run):
    view = load(fresh_run.workspace)
    ref = _ref(view, "StudyInstanceUID")
    reviewer = _reviewer(fresh_run)
    refused = decisions.release(fresh_run.workspace, ref, reviewer, {})
    assert refused.decision == "release-refused" and "StudyInstanceUID missing" in refused.reason
    assert load(fresh_run.workspace).file(ref).status == "quarantined"
    before = {p for p in fresh_run.output.rglob("*.dcm")}

    copy = fresh_run.workspace / "quarantine" / f"{ref}.dcm"  # the curator's fix
    ds = pydicom.dcmread(copy)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.4242"
    ds.save_as(copy)
    released = decisions.release(fresh_run.workspace, ref, reviewer, {})
    assert released.decision == "released"
    target = fresh_run.output / released.output_relpath
    assert target.is_file() and set(fresh_run.output.rglob("*.dcm")) == before | {target}
    out = pydicom.dcmread(target)
    assert str(out.PatientID) != "MRN0099123" and "PatientBirthDate" not in out or not out.PatientBirthDate
    assert not copy.exists()
    state = load(fresh_run.workspace).file(ref)
    assert state.status == "written" and [d["decision"] for d in state.decisions] == ["release-refused", "released"]
    with AuditStore.open(fresh_run.workspace / "audit.sqlite") as store:
        decided = [e for e in store.event_rows(ref) if e["category"] == DECISION]
        assert len(decided) == 2 and all("at" in json.loads(e["detail"]) for e in decided)
        assert store.last_result(ref).output_relpath == released.output_relpath
    with ReviewDatabase.open(fresh_run.workspace) as database:
        assert database.file(ref).changes  # header differences of the released file


def test_release_refuses_another_key_or_policy_and_changes_nothing(fresh_run, tmp_path):
    from medveil.pseudonym import generate_key_file

    ref = _ref(load(fresh_run.workspace), "StudyInstanceUID")
    other = generate_key_file(tmp_path / "other.key")
    with pytest.raises(decisions.DecisionError, match="not the run's key"):
        decisions.release(fresh_run.workspace, ref, _reviewer(fresh_run, key=other), {})
    with pytest.raises(decisions.DecisionError, match="policy differs"):
        decisions.release(fresh_run.workspace, ref, _reviewer(fresh_run, policy=get_profile("basic")), {})
    with pytest.raises(decisions.DecisionError, match="key and policy"):
        decisions.release(fresh_run.workspace, ref, decisions.Reviewer(), {})
    assert load(fresh_run.workspace).file(ref).decisions == []


def test_release_refuses_mappings_or_workspace_inside_the_release_tree(fresh_run):
    """The review's --mappings and --output are checked as a batch run's are: nothing private in the release."""
    ref = _ref(load(fresh_run.workspace), "StudyInstanceUID")
    copy = fresh_run.workspace / "quarantine" / f"{ref}.dcm"
    ds = pydicom.dcmread(copy)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.4242"
    ds.save_as(copy)
    before = sorted(p for p in fresh_run.root.rglob("*"))
    with pytest.raises(decisions.DecisionError, match="mappings directory must not be inside the output"):
        decisions.release(fresh_run.workspace, ref, _reviewer(fresh_run, mappings_dir=fresh_run.output / "maps"), {})
    with pytest.raises(decisions.DecisionError, match="must not be inside the output"):
        decisions.release(fresh_run.workspace, ref, _reviewer(fresh_run, output=str(fresh_run.root)), {})
    assert sorted(p for p in fresh_run.root.rglob("*")) == before
    assert load(fresh_run.workspace).file(ref).decisions == []


# -- static report ----------------------------------------------------------------------------


def _data_images(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_static_report_is_self_contained_and_shows_the_output_only(review_run, tmp_path):
    path = write_report(review_run.workspace, tmp_path / "report.html")
    html = path.read_text()
    assert "<style>" in html and 'rel="stylesheet"' not in html
    assert not re.search(r'(src|href)="(https?:|/)', html)  # no server, no CDN
    assert "StudyInstanceUID missing" in html and "Masked pixels (1 file(s))" in html
    assert not any(word in html for word in PHI_WORDS)
    images = _data_images(html)
    assert images
    state = _masked(load(review_run.workspace))
    with ReviewDatabase.open(review_run.workspace) as database:
        befores = [np.asarray(Image.open(io.BytesIO(database.picture_png(state.input_ref, p.number, "before"))))
                   for p in database.pictures(state.input_ref)]
    for image in images:  # none of them is a "before" picture
        assert not any(b.shape == image.shape and np.array_equal(b, image) for b in befores)
    crop = max(images, key=lambda i: i.shape[1])  # the box, enlarged: its text is gone, the middle is one value
    middle = crop[crop.shape[0] // 3: 2 * crop.shape[0] // 3, crop.shape[1] // 4: 3 * crop.shape[1] // 4]
    assert middle.std() < 5
    assert abs(float(crop[-10:].mean()) - float(middle.mean())) > 30  # below the box: anatomy, not washed out


def test_deidentify_report_option(tmp_path):
    from medveil.pseudonym import generate_key_file

    source = tmp_path / "in"
    source.mkdir()
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    ds.save_as(source / "mr.dcm")
    generate_key_file(tmp_path / "k")
    result = runner.invoke(cli, ["deidentify", str(source), str(tmp_path / "out"), "-k", str(tmp_path / "k"),
                                 "--report", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text()
    assert "Run summary" in html and "No pixels were masked" in html


# -- the app, without a browser ---------------------------------------------------------------


@pytest.fixture
def client_for():
    from starlette.testclient import TestClient

    from medveil.review.app import ReviewSettings, create_app

    def make(run, **settings):
        settings.setdefault("reviewer", _reviewer(run))
        return TestClient(create_app(ReviewSettings(workspace=run.workspace, **settings)),
                          base_url="http://127.0.0.1:8765", follow_redirects=False)
    return make


def test_app_pages_headers_and_pictures(review_run, client_for):
    client = client_for(review_run)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no scripts
    assert "Quarantine (2)" in page.text and "Masked pixels (1 file(s))" in page.text
    assert not any(word in page.text for word in PHI_WORDS)
    state = _masked(load(review_run.workspace))
    detail = client.get(f"/file/{state.input_ref}")
    assert detail.status_code == 200 and "Header differences" in detail.text and "PatientID" in detail.text
    picture = client.get(f"/picture/{state.input_ref}/0/before.png")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert client.get("/picture/..%2Faudit/0/before.png").status_code == 404
    assert client.get("/file/not-a-ref").status_code == 404
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_app_refuses_other_hosts_on_loopback(review_run, client_for):
    client = client_for(review_run)
    assert client.get("/", headers={"host": "attacker.example:8765"}).status_code == 400


def test_app_token(review_run, client_for):
    client = client_for(review_run, token="s3cret-token", loopback=False)
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    entry = client.get("/?token=s3cret-token")
    assert entry.status_code == 303 and "token" not in entry.headers["location"]
    assert "httponly" in entry.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200  # the cookie


def test_app_decisions_need_the_form_token(fresh_run, client_for):
    client = client_for(fresh_run)
    ref = _ref(load(fresh_run.workspace), "not a composite instance")
    assert client.post(f"/quarantine/{ref}/drop", data={"form_token": "forged"}).status_code == 403
    token = re.search(r'name="form_token" value="([^"]+)"', client.get("/").text).group(1)
    foreign = client.post(f"/quarantine/{ref}/drop", data={"form_token": token},
                          headers={"origin": "http://attacker.example"})
    assert foreign.status_code == 403
    assert load(fresh_run.workspace).file(ref).status == "quarantined"
    done = client.post(f"/quarantine/{ref}/drop", data={"form_token": token})
    assert done.status_code == 303
    assert load(fresh_run.workspace).file(ref).status == "skipped"
    assert "dropped" in client.get("/").text


def test_review_command_refuses_other_addresses_without_token(review_run):
    result = runner.invoke(cli, ["review", str(review_run.workspace), "--host", "0.0.0.0", "--token", "none"])
    assert result.exit_code == 2 and "token" in " ".join(result.output.split())


def test_review_page_requires_a_token_by_default_even_on_loopback():
    from medveil.cli.review import page_token

    made = page_token("auto", loopback=True)
    assert made and len(made) >= 24 and made != page_token("auto", loopback=True)
    assert page_token("none", loopback=True) is None  # an explicit choice, loopback only
    with pytest.raises(MedveilError, match="needs a token"):
        page_token("none", loopback=False)
    with pytest.raises(MedveilError, match="at least 16"):
        page_token("short", loopback=False)
    assert page_token("a-long-enough-token-1234", loopback=False) == "a-long-enough-token-1234"


# -- the Dask engine keeps the same material --------------------------------------------------


def test_dask_runner_keeps_review_material(tmp_path):
    pytest.importorskip("distributed")
    from medveil import deidentify_path
    from medveil.pseudonym import generate_key_file

    source = tmp_path / "in"
    source.mkdir()
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    ds.PatientName = "SMITHERS^WAYLON"
    ds.save_as(source / "mr.dcm")
    key = generate_key_file(tmp_path / "k")
    deidentify_path(source, tmp_path / "out", policy="basic", key=key, runner="dask", workers=1)
    view = load(tmp_path / "out.medveil-workspace")
    with ReviewDatabase.open(view.workspace) as database:
        kept = database.file(view.files[0].input_ref)
    assert kept is not None and any(c["attribute"] == "PatientName" for c in kept.changes)
    assert "SMITHERS" not in json.dumps(kept.changes)


def test_app_answers_a_non_ascii_token_with_401_not_a_server_error(review_run, client_for):
    """hmac.compare_digest raises TypeError for non-ASCII str: a stray byte in the query, the
    Authorization header, the cookie or the form must be refused, not crash the request."""
    client = client_for(review_run, token="s3cret-token", loopback=False)
    assert client.get("/?token=%C3%A9").status_code == 401
    assert client.get("/", headers={"authorization": b"Bearer \xe9"}).status_code == 401
    assert client.get("/", headers={"cookie": b"medveil_review=\xe9"}).status_code == 401
    local = client_for(review_run)
    ref = "a" * 32
    answer = local.post(f"/quarantine/{ref}/drop", content=b"form_token=%C3%A9",
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 403



def test_app_pages_of_a_missing_or_broken_workspace_say_so(fresh_run, client_for):
    """The workspace may change under a running review page (a broken disk, a copy over it): every
    page answers with the error page, never a traceback."""
    client = client_for(fresh_run)
    state = _masked(load(fresh_run.workspace))
    ref = state.input_ref
    location(fresh_run.workspace).write_bytes(b"not a database" * 100)
    for page in ("/", f"/file/{ref}", f"/picture/{ref}/0/before.png"):
        answer = client.get(page)
        assert answer.status_code == 404 and "review.sqlite" in answer.text, page
        assert answer.headers["cache-control"] == "no-store"
    (fresh_run.workspace / "audit.sqlite").write_bytes(b"not a database" * 100)
    for leftover in fresh_run.workspace.glob("audit.sqlite-*"):
        leftover.unlink()
    broken = client.get(f"/file/{ref}")
    assert broken.status_code == 404 and "audit" in broken.text.lower()
    import shutil

    shutil.rmtree(fresh_run.workspace)
    assert client.get(f"/file/{ref}").status_code == 404
