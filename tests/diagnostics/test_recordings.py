"""Recordings as a clinician makes them: stethoscope sounds and ECGs written here as real files (the stdlib's
wave module, libsndfile, wfdb.wrsamp), uploaded through the patient page, processed by the pipeline (inline),
listened to, looked at and counted; bad files refused by name; other hospitals kept out."""

import io
import re
import wave
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from diagnostics import recordings
from diagnostics.models import Recording
from hospitals.events import hospital_group
from hospitals.models import AuditEntry, Staff, User
from patients.models import Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make

Login = Callable[[User], Client]


# Real files, made here.


def heart_sound(seconds: float = 4.0, rate: int = 4000, bpm: float = 72.0, seed: int = 1) -> np.ndarray:
    """A phonocardiogram-like signal: per beat a low S1 (~50 Hz) and a shorter, higher S2 (~80 Hz), in noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.01 * rng.standard_normal(t.size)
    for beat in np.arange(0.1, seconds - 0.2, 60 / bpm):
        for offset, frequency, length, loudness in ((0.0, 50, 0.1, 0.6), (0.3, 80, 0.07, 0.4)):
            inside = (t >= beat + offset) & (t < beat + offset + length)
            phase = t[inside] - beat - offset
            signal[inside] += loudness * np.sin(2 * np.pi * frequency * phase) * np.hanning(inside.sum())
    return signal.astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 4000, sample_width: int = 2, channels: int = 1) -> bytes:
    """A PCM WAV written by the standard library's wave module (8-bit unsigned or 16-bit signed)."""
    frames = np.repeat(samples[:, np.newaxis], channels, axis=1)
    if sample_width == 1:
        raw = (frames * 127 + 128).clip(0, 255).astype(np.uint8).tobytes()
    else:
        raw = (frames * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(channels)
        sound.setsampwidth(sample_width)
        sound.setframerate(rate)
        sound.writeframes(raw)
    return out.getvalue()


def sound_bytes(samples: np.ndarray, rate: int, container: str, subtype: str) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=container, subtype=subtype)
    return out.getvalue()


def ecg_leads(rate: float, bpm: float, seconds: float = 12.0, seed: int = 3) -> dict[str, np.ndarray]:
    """Leads I, II and V1 in millivolts: P, Q, R, S and T waves as Gaussians on each beat, with a little
    beat-to-beat variation, breathing drift and noise (as an ECG recorder's leads look, not an ideal curve)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    waves = [(-0.2, 0.025, 0.15), (-0.03, 0.008, -0.12), (0.0, 0.011, 1.3), (0.03, 0.009, -0.3), (0.25, 0.045, 0.35)]
    base = np.zeros_like(t)
    beat = 0.3
    while beat < seconds:
        for offset, width, height in waves:
            base += height * np.exp(-((t - beat - offset) ** 2) / (2 * width**2))
        beat += 60 / bpm * (1 + 0.02 * rng.standard_normal())
    drift = 0.15 * np.sin(2 * np.pi * 0.25 * t)
    return {
        "I": 0.6 * base + drift + 0.02 * rng.standard_normal(t.size),
        "II": base + drift + 0.02 * rng.standard_normal(t.size),
        "V1": -0.5 * base + drift + 0.02 * rng.standard_normal(t.size),
    }


def wfdb_record(folder: Path, *, rate: float, bpm: float, name: str = "ecg100", fmt: str = "16") -> dict[str, bytes]:
    """A WFDB record (header and signal file) written by wfdb.wrsamp; {file name: bytes}."""
    import wfdb

    leads = ecg_leads(rate, bpm)
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=rate,
        units=["mV"] * len(leads),
        sig_name=list(leads),
        p_signal=np.stack(list(leads.values()), axis=1),
        fmt=[fmt] * len(leads),
        write_dir=str(folder),
    )
    return {path.name: path.read_bytes() for path in sorted(folder.glob(f"{name}.*"))}


def ecg_csv(rate: float, bpm: float, *, time_column: bool = False, russian: bool = False) -> bytes:
    leads = ecg_leads(rate, bpm)
    separator = ";" if russian else ","
    header = (["time"] if time_column else []) + list(leads)
    lines = [separator.join(header)]
    for number, values in enumerate(zip(*leads.values(), strict=True)):
        cells = ([f"{number / rate:.5f}"] if time_column else []) + [f"{value:.4f}" for value in values]
        line = separator.join(cells)
        lines.append(line.replace(".", ",") if russian else line)
    return ("\n".join(lines) + "\n").encode()


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        for name, data in files.items():
            packed.writestr(f"export/{name}", data)
    return out.getvalue()


# Fixtures and the page's way in.


@pytest.fixture
def clinician(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user


@pytest.fixture
def patient(network_a: Network) -> Patient:
    return PatientFactory(hospital=network_a.regional)


def upload(client: Client, patient: Patient, files: dict[str, bytes], kind: str, **fields: Any) -> Any:
    """The card's form, posted as a browser does; what the request leaves for after the commit (the pipeline,
    inline; the live events) runs at once even inside the test's transaction."""
    form = {
        "kind": kind,
        "file": [SimpleUploadedFile(name, data) for name, data in files.items()],
        **{key: str(value) for key, value in fields.items()},
    }
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/recordings/patients/{patient.pk}/upload/", form)


def png_size(name: str) -> tuple[int, int]:
    with default_storage.open(name) as picture:
        image = Image.open(picture)
        assert image.format == "PNG"
        return image.size


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# Sounds.

HEART = heart_sound()  # four seconds at 4 kHz, as stethoscopes sample
HEART_8K = heart_sound(rate=8000)  # Opus and MP3 take no 4 kHz
SOUNDS: dict[str, tuple[str, Callable[[], bytes], str, str]] = {
    "PCM 8-bit WAV (wave module)": ("heart.wav", lambda: wav_bytes(HEART, sample_width=1), "wav", "PCM_U8"),
    "PCM 16-bit WAV (wave module)": ("heart.wav", lambda: wav_bytes(HEART), "wav", "PCM_16"),
    "stereo PCM 16-bit WAV": ("heart.wav", lambda: wav_bytes(HEART, channels=2), "wav", "PCM_16"),
    "PCM 24-bit WAV": ("heart.wav", lambda: sound_bytes(HEART, 4000, "WAV", "PCM_24"), "wav", "PCM_24"),
    "PCM 32-bit WAV": ("heart.wav", lambda: sound_bytes(HEART, 4000, "WAV", "PCM_32"), "wav", "PCM_32"),
    "float WAV": ("heart.wav", lambda: sound_bytes(HEART, 4000, "WAV", "FLOAT"), "wav", "FLOAT"),
    "FLAC": ("heart.flac", lambda: sound_bytes(HEART, 4000, "FLAC", "PCM_16"), "flac", "PCM_16"),
    "OGG Vorbis": ("heart.ogg", lambda: sound_bytes(HEART, 4000, "OGG", "VORBIS"), "ogg", "VORBIS"),
    "OGG Opus": ("heart.opus", lambda: sound_bytes(HEART_8K, 8000, "OGG", "OPUS"), "ogg", "OPUS"),
    "MP3": ("heart.mp3", lambda: sound_bytes(HEART_8K, 8000, "MP3", "MPEG_LAYER_III"), "mp3", "MPEG_LAYER_III"),
}


@pytest.mark.parametrize("case", list(SOUNDS))
def test_a_heart_sound_is_stored_drawn_and_played_in_the_page(
    case: str, clinician: User, patient: Patient, login: Login
) -> None:
    name, make, stored_format, encoding = SOUNDS[case]
    data = make()
    client = login(clinician)

    response = upload(client, patient, {name: data}, "heart")

    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/#recordings"
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.READY, recording.error
    assert (recording.format, recording.encoding, recording.kind) == (stored_format, encoding, "heart")
    assert recording.patient == patient and recording.uploaded_by == clinician and recording.original_name == name
    assert recording.duration_s == pytest.approx(4.0, abs=0.1) and recording.attempts == 1
    # Stored once under its content's hash, never under the client's name.
    assert recording.file.name.endswith(f"{recording.sha256}.{stored_format}") and name not in recording.file.name
    with default_storage.open(recording.file.name) as kept:
        assert kept.read() == data
    assert png_size(recording.waveform.name) == (1200, 160)
    assert png_size(recording.spectrogram.name) == (1200, 240)
    assert not recording.trace and recording.heart_rate_bpm is None

    card = client.get(f"/recordings/patients/{patient.pk}/").content.decode()
    assert f'<audio controls preload="none" src="/recordings/{recording.pk}/file"' in card
    assert f'src="/recordings/{recording.pk}/waveform.png"' in card
    assert f'src="/recordings/{recording.pk}/spectrogram.png"' in card
    played = client.get(f"/recordings/{recording.pk}/file")
    assert played.status_code == 200 and played["Content-Type"].startswith("audio/")
    assert body(played) == data and played["Accept-Ranges"] == "bytes"
    picture = client.get(f"/recordings/{recording.pk}/spectrogram.png")
    assert picture.status_code == 200 and picture["Content-Type"] == "image/png"


def test_the_player_can_seek_through_byte_ranges(clinician: User, patient: Patient, login: Login) -> None:
    data = wav_bytes(heart_sound())
    client = login(clinician)
    upload(client, patient, {"heart.wav": data}, "heart")
    url = f"/recordings/{Recording.objects.get().pk}/file"

    middle = client.get(url, HTTP_RANGE="bytes=1000-1999")
    assert middle.status_code == 206 and middle.content == data[1000:2000]
    assert middle["Content-Range"] == f"bytes 1000-1999/{len(data)}" and middle["Content-Type"] == "audio/wav"
    rest = client.get(url, HTTP_RANGE="bytes=30000-")
    assert rest.status_code == 206 and rest.content == data[30000:]
    last = client.get(url, HTTP_RANGE="bytes=-44")
    assert last.status_code == 206 and last.content == data[-44:]
    past = client.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{len(data)}"
    reads = AuditEntry.objects.filter(object_type="diagnostics.recording", action="view")
    assert {entry.detail for entry in reads} >= {
        "file, bytes 1000-1999",
        f"file, bytes {len(data) - 44}-{len(data) - 1}",
    }


def test_a_lung_sound_has_a_wider_spectrogram_and_the_patient_page_shows_the_card(
    clinician: User, patient: Patient, login: Login
) -> None:
    client = login(clinician)
    upload(client, patient, {"lungs.flac": sound_bytes(heart_sound(rate=16000), 16000, "FLAC", "PCM_16")}, "lung")
    recording = Recording.objects.get()
    assert recording.kind == "lung" and recording.status == Recording.Status.READY and recording.spectrogram

    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert 'data-testid="recordings"' in page and f'hx-get="/recordings/patients/{patient.pk}/"' in page
    card = client.get(f"/recordings/patients/{patient.pk}/").content.decode()
    assert 'enctype="multipart/form-data"' in card and 'name="sample_rate"' in card and 'name="kind"' in card
    assert "Lung sound · lungs.flac" in card


# ECGs.


@pytest.mark.parametrize(("rate", "bpm", "fmt"), [(500, 72, "16"), (360, 110, "212"), (250, 50, "16")])
def test_a_wfdb_record_sent_as_two_files_gives_the_trace_and_the_heart_rate(
    rate: int, bpm: float, fmt: str, clinician: User, patient: Patient, login: Login, tmp_path: Path
) -> None:
    files = wfdb_record(tmp_path, rate=rate, bpm=bpm, fmt=fmt)
    client = login(clinician)

    assert upload(client, patient, files, "ecg").status_code == 302

    recording = Recording.objects.get()
    assert recording.status == Recording.Status.READY, recording.error
    assert (
        recording.format == "wfdb" and recording.encoding == f"WFDB {fmt}" and recording.original_name == "ecg100.hea"
    )
    assert (recording.sample_rate, recording.channels, recording.lead_names) == (rate, 3, ["I", "II", "V1"])
    assert recording.lead == "II"  # the rhythm strip's lead, not the first
    assert recording.heart_rate_bpm == pytest.approx(bpm, abs=5)
    assert recording.beats == pytest.approx(12 * bpm / 60, abs=2)
    assert png_size(recording.trace.name) == (1040, 160 * 2)  # 10 mm pulse + 250 mm; two 10-second strips
    assert png_size(recording.waveform.name) == (1200, 160)
    assert not recording.spectrogram

    card = client.get(f"/recordings/patients/{patient.pk}/").content.decode()
    shown = re.search(r"Heart rate <strong>(\d+)</strong> beats/min", card)
    assert shown is not None and abs(int(shown[1]) - recording.heart_rate_bpm) <= 0.5
    assert f'src="/recordings/{recording.pk}/trace.png"' in card and "<audio" not in card
    download = client.get(f"/recordings/{recording.pk}/file")
    assert download["Content-Type"] == "application/zip" and 'filename="ecg100.zip"' in download["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(body(download))) as packed:
        assert {name: packed.read(name) for name in packed.namelist()} == files


def test_a_wfdb_record_in_a_zip_is_the_same_record_as_its_two_files(
    clinician: User, patient: Patient, login: Login, tmp_path: Path
) -> None:
    files = wfdb_record(tmp_path, rate=500, bpm=64)
    client = login(clinician)
    upload(client, patient, {"holter-export.zip": zipped(files)}, "ecg")
    recording = Recording.objects.get()
    assert (
        recording.status == Recording.Status.READY and recording.original_name == "holter-export.zip/export/ecg100.hea"
    )
    assert recording.heart_rate_bpm == pytest.approx(64, abs=5)

    again = upload(client, patient, files, "ecg")  # the same record, now as loose files
    assert again.status_code == 302 and Recording.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "fields", "make"),
    [
        ("rate in the form", {"sample_rate": "500"}, lambda: ecg_csv(500, 80)),
        ("rate from a time column", {}, lambda: ecg_csv(500, 80, time_column=True)),
        (
            "a Russian export: semicolons and decimal commas",
            {"sample_rate": "500"},
            lambda: ecg_csv(500, 80, russian=True),
        ),
    ],
)
def test_a_csv_of_leads_gives_the_heart_rate(
    case: str, fields: dict[str, str], make: Callable[[], bytes], clinician: User, patient: Patient, login: Login
) -> None:
    client = login(clinician)
    response = upload(client, patient, {"ecg.csv": make()}, "ecg", **fields)
    assert response.status_code == 302, response.content.decode()
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.READY, recording.error
    assert (recording.format, recording.sample_rate, recording.lead_names) == ("csv", 500, ["I", "II", "V1"])
    assert recording.duration_s == pytest.approx(12)
    assert recording.heart_rate_bpm == pytest.approx(80, abs=5) and recording.lead == "II"
    assert recording.trace and recording.waveform


def test_a_csv_in_microvolts_is_drawn_in_millivolts(clinician: User, patient: Patient, login: Login) -> None:
    leads = ecg_leads(500, 70)
    lines = ["II (uV)"] + [f"{value * 1000:.1f}" for value in leads["II"]]
    client = login(clinician)
    upload(client, patient, {"ecg.csv": "\n".join(lines).encode()}, "ecg", sample_rate=500)
    recording = Recording.objects.get()
    assert recording.lead_names == ["II"] and recording.heart_rate_bpm == pytest.approx(70, abs=5)
    with default_storage.open(recording.trace.name) as picture:
        ink = np.asarray(Image.open(picture).convert("L"))[:160, 40:] < 100  # the first strip, past the pulse
    rows = np.nonzero(ink.any(axis=1))[0]
    # R waves of ~1.3 mV at 10 mm/mV and 4 px/mm reach ~52 px above the baseline: not off the strip.
    assert 35 < rows.max() - rows.min() < 100


# Bad files: refused by name, the rest of the batch kept, every attempt audited.


def test_a_wav_that_is_not_audio_is_refused_by_name_and_audited_and_the_rest_is_kept(
    clinician: User, patient: Patient, login: Login
) -> None:
    client = login(clinician)
    good = wav_bytes(heart_sound())
    response = upload(
        client, patient, {"apex.wav": good, "notes.wav": b"Auscultation notes: S1 S2 normal\n" * 20}, "heart"
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "“notes.wav” is not a sound recording: no WAV, FLAC, OGG or MP3 audio can be read from it" in page
    assert 'data-testid="error-file"' in page  # next to the Files field
    assert Recording.objects.get().original_name == "apex.wav"  # the good file of the batch was stored
    assert "stored</span> apex.wav" in page
    refusal = AuditEntry.objects.get(object_type="diagnostics.recording", outcome=AuditEntry.Outcome.INVALID)
    assert refusal.patient_id == str(patient.pk) and refusal.actor_id == clinician.pk
    assert refusal.detail.startswith("notes.wav: “notes.wav” is not a sound recording")
    stored = AuditEntry.objects.get(object_type="diagnostics.recording", action="create", outcome="success")
    assert stored.object_id == str(Recording.objects.get().pk) and stored.patient_id == str(patient.pk)


def test_an_ecg_with_a_sampling_rate_of_zero_is_refused_naming_the_field(
    clinician: User, patient: Patient, login: Login, tmp_path: Path
) -> None:
    client = login(clinician)
    response = upload(client, patient, {"ecg.csv": ecg_csv(500, 70)}, "ecg", sample_rate=0)

    assert response.status_code == 400
    error = re.search(r'data-testid="error-sample_rate">(.*?)</div>', response.content.decode(), re.S)
    assert error is not None
    assert "Sampling rate (Hz): 0 is not a sampling rate; enter the rate “ecg.csv” was recorded at" in error[1]
    assert not Recording.objects.exists()
    assert AuditEntry.objects.filter(
        object_type="diagnostics.recording", outcome="invalid", patient_id=str(patient.pk), detail__contains="0 is not"
    ).exists()

    # The same in a WFDB header: its record line gives 0 Hz.
    files = wfdb_record(tmp_path, rate=500, bpm=70)
    files["ecg100.hea"] = files["ecg100.hea"].replace(b"ecg100 3 500 ", b"ecg100 3 0 ")
    response = upload(client, patient, files, "ecg")
    assert response.status_code == 400
    assert "“ecg100.hea” gives a sampling frequency of 0 Hz in its record line" in response.content.decode()
    assert not Recording.objects.exists()


def test_a_csv_without_a_sampling_rate_asks_for_it(clinician: User, patient: Patient, login: Login) -> None:
    response = upload(login(clinician), patient, {"ecg.csv": ecg_csv(500, 70)}, "ecg")
    assert response.status_code == 400
    assert "Sampling rate (Hz): “ecg.csv” is a CSV of leads, which does not say how often it was sampled" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("a sound as an ECG", "Kind: “heart.wav” is a sound recording, but the kind chosen is ECG"),
        ("an ECG as a heart sound", "Kind: “ecg.csv” is an ECG (CSV of leads), but the kind chosen is heart sound"),
        ("a header without its signal file", "“ecg100.hea” names the signal file “ecg100.dat”, which is not in the"),
        ("a signal file without its header", "“ecg100.dat” looks like a WFDB signal file without its header"),
        ("a signal file cut short", "“ecg100.dat” holds 1000 bytes, but its header “ecg100.hea” describes 36000"),
        ("a CSV without a header row", "“ecg.csv” has no header row naming its leads"),
        ("a CSV with words among the numbers", "“ecg.csv”, line 2: expected one number per lead"),
        ("a file of another kind", "“scan.pdf” is not a sound recording"),
        ("an empty file", "Files: the file is empty."),
    ],
)
def test_bad_files_are_refused_with_the_reason_and_leave_nothing_behind(
    case: str, message: str, clinician: User, patient: Patient, login: Login, tmp_path: Path
) -> None:
    record = wfdb_record(tmp_path, rate=500, bpm=70)
    csv = ecg_csv(500, 70)
    kind, files, fields = {
        "a sound as an ECG": ("ecg", {"heart.wav": wav_bytes(heart_sound())}, {}),
        "an ECG as a heart sound": ("heart", {"ecg.csv": csv}, {"sample_rate": 500}),
        "a header without its signal file": ("ecg", {"ecg100.hea": record["ecg100.hea"]}, {}),
        "a signal file without its header": ("ecg", {"ecg100.dat": record["ecg100.dat"]}, {}),
        "a signal file cut short": ("ecg", {**record, "ecg100.dat": record["ecg100.dat"][:1000]}, {}),
        "a CSV without a header row": ("ecg", {"ecg.csv": b"0.1,0.2\n0.3,0.4\n"}, {"sample_rate": 500}),
        "a CSV with words among the numbers": ("ecg", {"ecg.csv": b"I,II\nlead,off\n"}, {"sample_rate": 500}),
        "a file of another kind": ("heart", {"scan.pdf": b"%PDF-1.7 a lab printout"}, {}),
        "an empty file": ("heart", {"empty.wav": b""}, {}),
    }[case]
    response = upload(login(clinician), patient, files, kind, **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Recording.objects.exists()
    assert not default_storage.exists("recordings")
    assert AuditEntry.objects.filter(object_type="diagnostics.recording", outcome="invalid").exists()


def test_limits_come_from_the_settings(clinician: User, patient: Patient, login: Login, settings: Any) -> None:
    client = login(clinician)
    settings.RECORDING_MAX_SECONDS = 3
    long = upload(client, patient, {"long.wav": wav_bytes(heart_sound(seconds=4))}, "heart")
    assert long.status_code == 400 and "“long.wav” lasts 0.1 min; a recording may last at most 0.05 min" in (
        long.content.decode()
    )
    settings.RECORDING_MAX_BYTES = 10_000
    large = upload(client, patient, {"large.wav": wav_bytes(heart_sound(seconds=2))}, "heart")
    assert large.status_code == 413 and "“large.wav” is 0 MB; a recording may be at most 0 MB" in large.content.decode()
    assert not Recording.objects.exists()


# Duplicates, devices, and who may see what.


def test_the_same_recording_twice_is_stored_once(clinician: User, patient: Patient, login: Login) -> None:
    data = wav_bytes(heart_sound())
    client = login(clinician)
    upload(client, patient, {"apex.wav": data}, "heart")
    again = upload(client, patient, {"apex copy.wav": data}, "heart")
    assert again.status_code == 302 and Recording.objects.count() == 1
    assert Recording.objects.get().original_name == "apex.wav"
    _folders, files = default_storage.listdir(str(Path(Recording.objects.get().file.name).parent))
    assert len(files) == 1
    assert AuditEntry.objects.filter(detail="apex copy.wav: stored before, nothing added").exists()

    other = PatientFactory(hospital=patient.hospital)
    refused = upload(client, other, {"apex.wav": data}, "heart")
    assert refused.status_code == 400
    assert "“apex.wav” is already filed under another patient of the hospital" in refused.content.decode()


def test_a_device_stores_through_the_same_service(patient: Patient, django_capture_on_commit_callbacks: Any) -> None:
    class Stethoscope:  # the devices app's Device, as the service sees it: something with a pk
        pk = 41

    with django_capture_on_commit_callbacks(execute=True):
        stored = recordings.recording_store(
            data=wav_bytes(heart_sound()),
            filename="../../etc/passwd.wav",
            kind="heart",
            patient=patient,
            hospital_id=patient.hospital_id,
            device=Stethoscope(),
        )
    recording = Recording.objects.get(pk=stored.recording.pk)
    assert stored.created and recording.source == "device" and recording.device_id == 41
    assert recording.uploaded_by is None and recording.status == Recording.Status.READY
    assert "passwd" not in recording.file.name and recording.file.name.startswith("recordings/")
    with pytest.raises(recordings.RecordingRefused, match="not a patient of the hospital"):
        recordings.recording_store(
            data=b"", filename="x.wav", kind="heart", patient=patient, hospital_id=patient.hospital_id + 1000
        )


def _recording_of(patient: Patient) -> Recording:
    with TestCase.captureOnCommitCallbacks(execute=True):
        stored = recordings.recording_store(
            data=wav_bytes(heart_sound(seed=patient.pk)),
            filename="apex.wav",
            kind="heart",
            patient=patient,
            hospital_id=patient.hospital_id,
        )
    return stored.recording


def test_another_hospitals_recording_is_a_404_like_one_that_does_not_exist(
    network_a: Network, network_b: Network, login: Login
) -> None:
    kostroma = _recording_of(PatientFactory(hospital=network_b.regional))
    tula_clinician = login(StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user)
    for path in (f"/recordings/{kostroma.pk}/file", f"/recordings/{kostroma.pk}/waveform.png"):
        assert tula_clinician.get(path).status_code == 404
    assert tula_clinician.post(f"/recordings/{kostroma.pk}/retry/").status_code == 404
    assert tula_clinician.get(f"/recordings/patients/{kostroma.patient_id}/").status_code == 404
    assert upload(tula_clinician, kostroma.patient, {"a.wav": wav_bytes(heart_sound())}, "heart").status_code == 404
    assert (
        AuditEntry.objects.filter(
            object_type="diagnostics.recording", object_id=str(kostroma.pk), outcome="not_found"
        ).count()
        == 3
    )
    assert Recording.objects.count() == 1


def test_a_consulted_specialist_hears_the_patients_recordings(network_a: Network, login: Login) -> None:
    consultation = consultation_make(PatientFactory(hospital=network_a.regional))
    under_consultation = _recording_of(consultation.patient)
    not_consulted = _recording_of(PatientFactory(hospital=network_a.regional))
    specialist = login(StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user)

    card = specialist.get(f"/recordings/patients/{consultation.patient_id}/")
    assert card.status_code == 200 and f'data-recording="{under_consultation.pk}"' in card.content.decode()
    assert specialist.get(f"/recordings/{under_consultation.pk}/file").status_code == 200
    assert specialist.get(f"/recordings/{under_consultation.pk}/spectrogram.png").status_code == 200
    assert specialist.get(f"/recordings/{not_consulted.pk}/file").status_code == 404
    assert (
        AuditEntry.objects.filter(
            object_id=str(under_consultation.pk), patient_id=str(consultation.patient_id), action="view"
        ).count()
        == 2
    )


def test_the_list_takes_the_same_queries_however_many_recordings(
    clinician: User, patient: Patient, login: Login
) -> None:
    client = login(clinician)
    url = f"/recordings/patients/{patient.pk}/"
    for seed in range(2):
        upload(client, patient, {f"{seed}.wav": wav_bytes(heart_sound(seed=seed))}, "heart")
    client.get(url)  # sessions and the like settle
    with CaptureQueriesContext(connection) as two:
        client.get(url)
    for seed in range(2, 6):
        upload(client, patient, {f"{seed}.wav": wav_bytes(heart_sound(seed=seed))}, "heart")
    client.get(url)
    with CaptureQueriesContext(connection) as six:
        page = client.get(url)
    assert page.content.decode().count('data-testid="recording"') == 6
    assert len(six.captured_queries) == len(two.captured_queries) <= 12


# The pipeline: failures, try again, the sweep, live events.


def test_a_recording_the_worker_cannot_decode_fails_with_the_reason_and_can_be_tried_again(
    clinician: User, patient: Patient, login: Login
) -> None:
    # The request path reads a CSV's first lines only; line 5 is found bad by the worker.
    data = b"I,II\n0.1,0.2\n0.1,0.3\n0.2,0.2\nlead,off\n" + b"0.1,0.2\n" * 3000
    client = login(clinician)
    assert upload(client, patient, {"ecg.csv": data}, "ecg", sample_rate=500).status_code == 302
    recording = Recording.objects.get()
    assert recording.status == Recording.Status.FAILED and recording.attempts == 1
    assert recording.error.startswith("“ecg.csv” cannot be read as numbers")
    card = client.get(f"/recordings/patients/{patient.pk}/").content.decode()
    assert 'data-testid="recording-error"' in card and f'action="/recordings/{recording.pk}/retry/"' in card

    with TestCase.captureOnCommitCallbacks(execute=True):
        retried = client.post(f"/recordings/{recording.pk}/retry/", {"next": f"/patients/{patient.pk}/"})
    assert retried.status_code == 302
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED and recording.attempts == 1  # tried again, inline
    assert AuditEntry.objects.filter(object_id=str(recording.pk), detail="try again").exists()
    ready = _recording_of(patient)
    assert not recordings.recording_reprocess(ready)  # only failed recordings are tried again


def test_processing_twice_changes_nothing(patient: Patient) -> None:
    recording = _recording_of(patient)
    assert recording.status == Recording.Status.QUEUED  # as returned by the store; the pipeline ran since
    assert recordings.recording_process(recording.pk) is False
    recording.refresh_from_db()
    assert recording.status == Recording.Status.READY and recording.attempts == 1


def test_the_sweep_queues_stuck_recordings_again_and_gives_up_on_one_that_keeps_failing(
    patient: Patient, settings: Any
) -> None:
    stuck = _recording_of(patient)
    poison = _recording_of(PatientFactory(hospital=patient.hospital))
    long_ago = timezone.now() - timezone.timedelta(hours=1)
    Recording.objects.filter(pk=stuck.pk).update(status="processing", attempts=1, status_changed_at=long_ago)
    Recording.objects.filter(pk=poison.pk).update(status="processing", attempts=3, status_changed_at=long_ago)
    settings.RECORDING_MAX_ATTEMPTS = 3

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert recordings.recordings_requeue_stuck() == 1

    stuck.refresh_from_db()
    poison.refresh_from_db()
    assert stuck.status == Recording.Status.READY and stuck.attempts == 2
    assert poison.status == Recording.Status.FAILED and "Processing stopped 3 times" in poison.error
    from mhospital.settings import CELERY_BEAT_SCHEDULE

    assert CELERY_BEAT_SCHEDULE["recordings-requeue-stuck"]["task"] == "diagnostics.tasks.recordings_requeue_stuck"


def test_a_ready_recording_is_announced_to_its_hospital_and_to_the_consulted_hospital(
    network_a: Network, layer_listener
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(PatientFactory(hospital=network_a.regional))
    tula = layer_listener.channel(hospital_group(network_a.regional.pk))
    moscow = layer_listener.channel(hospital_group(network_a.central.pk))

    recording = _recording_of(consultation.patient)

    for channel in (tula, moscow):
        message = layer_listener.receive(channel)
        assert message["payload"] == {
            "kind": "recording",
            "id": recording.pk,
            "patient": consultation.patient_id,
            "recording_kind": "heart",
            "status": "ready",
        }
