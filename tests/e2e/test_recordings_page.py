"""In a real browser: a Tula clinician uploads a heart sound and an ECG on a patient's page; a colleague's open
page of the same patient shows them without reloading, Chromium plays the sound from the page (seeking
through byte ranges) and the ECG shows its heart rate."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from hospitals.demo import demo_load
from hospitals.models import Hospital
from tests.conftest import PatientFactory
from tests.diagnostics.test_recordings import ecg_csv, heart_sound, wav_bytes
from tests.e2e.conftest import off_loop, sign_in

pytestmark = [pytest.mark.browser]


def test_recordings_arrive_live_play_in_the_page_and_show_the_heart_rate(  # type: ignore[no-untyped-def]
    page, asgi_server: str, tmp_path: Path
) -> None:
    off_loop(demo_load)
    patient = PatientFactory(hospital=Hospital.objects.get(name="Tula Regional Hospital"))
    (tmp_path / "apex.wav").write_bytes(wav_bytes(heart_sound(seconds=8)))
    (tmp_path / "ecg.csv").write_bytes(ecg_csv(500, 75))
    sign_in(page, asgi_server, "tula.clinician")
    page.goto(f"{asgi_server}/patients/{patient.pk}/")
    page.wait_for_function("() => document.body.dataset.live === 'connected'")
    expect(page.get_by_test_id("no-recordings")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    uploader = page.context.new_page()
    uploader.goto(f"{asgi_server}/patients/{patient.pk}/")
    for kind, path, rate in (("heart", "apex.wav", ""), ("ecg", "ecg.csv", "500")):
        form = uploader.get_by_test_id("recording-form")
        form.locator("select[name=kind]").select_option(kind)
        form.locator("input[name=sample_rate]").fill(rate)
        form.locator("input[name=file]").set_input_files(str(tmp_path / path))
        form.get_by_test_id("recording-submit").click()
        uploader.wait_for_url("**#recordings")
        expect(uploader.get_by_text("1 recording stored")).to_be_visible()

    # The first page heard of both through its socket, and kept its state.
    expect(page.get_by_test_id("recording")).to_have_count(2, timeout=30_000)
    expect(page.get_by_test_id("heart-rate")).to_contain_text("beats/min (")
    rate = int(page.get_by_test_id("heart-rate").locator("strong").inner_text())
    assert 70 <= rate <= 80
    expect(page.get_by_test_id("trace")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    player = page.get_by_test_id("player")
    duration = player.evaluate(
        "a => new Promise(r => { a.onloadedmetadata = () => r(a.duration); a.onerror = () => r(-1);"
        " a.preload = 'auto'; a.load(); })"
    )
    assert duration == pytest.approx(8, abs=0.1)
    position = player.evaluate("a => new Promise(r => { a.onseeked = () => r(a.currentTime); a.currentTime = 5; })")
    assert position == pytest.approx(5, abs=0.1)
    pictures = page.locator("[data-testid=recording] img")
    expect(pictures).to_have_count(4)  # the sound's waveform and spectrogram, the ECG's trace and waveform
    for picture in pictures.all():
        assert picture.evaluate("img => { img.loading = 'eager'; return img.decode().then(() => img.naturalWidth); }")
