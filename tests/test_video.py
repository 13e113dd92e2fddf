"""zoo.video: frame sampling by timestamp, Farneback flow images, two-stream
features of a short video made from scikit-image photos, and the one-line
errors for files that are not videos."""

import fractions
import os

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

import av  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from helpers import numpy_variables  # noqa: E402
from zoo import video as V  # noqa: E402

H, W = 96, 128
SOURCE_FPS = 10
PAN = 3.2  # pixels per source frame the window moves right while panning
# A small classifier at a small size keeps compiling and running cheap; the
# reference (grouped-conv) depthwise form compiles several times faster on
# CPU than the unrolled one and gives the same features.
BACKBONE, SIZE, IMPL = "mobilenet_v1", 64, "reference"


def _resized(image, h, w):
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def _scenes():
    """2 s of chelsea (still), 2 s panning across coffee (the view moves
    right by PAN pixels per frame, so the content moves left), 2 s of
    astronaut (still): 60 frames at 10 fps."""
    cat = _resized(data.chelsea(), H, 144)[:, 8:8 + W]
    coffee = _resized(data.coffee(), 128, 192)[16:16 + H]
    astronaut = _resized(data.astronaut(), 128, 128)[16:16 + H]
    frames = [cat] * 20
    frames += [coffee[:, round(PAN * i):round(PAN * i) + W] for i in range(20)]
    frames += [astronaut] * 20
    return np.stack(frames)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "scenes.mp4"
    V.write_video(path, _scenes(), SOURCE_FPS)
    return str(path)


@pytest.fixture(scope="module")
def backbone_variables():
    """Random variables for the backbone without its top, filled in numpy."""
    from zoo.registry import build

    return numpy_variables(build(BACKBONE, include_top=False))


def _features(path, variables, **kw):
    kw = {"fps": 5, "stride": 2, "batch_size": 4, **kw}
    return V.features(path, BACKBONE, variables=variables, resolution=SIZE, implementation=IMPL,
                      progress=False, **kw)


def _decode_all(path):
    with av.open(path) as c:
        return [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


# ------------------------------------------------------------ sampling


def test_written_video_round_trips(clip):
    decoded = _decode_all(clip)
    assert len(decoded) == 60
    np.testing.assert_allclose([t for t, _ in decoded], np.arange(60) / SOURCE_FPS, atol=1e-6)
    scenes = _scenes()
    for i in (0, 25, 59):  # lossy, but close to the photos
        err = np.abs(decoded[i][1].astype(float) - scenes[i]).mean()
        assert err < 6, (i, err)


def test_sample_frames_by_timestamp(clip):
    decoded = _decode_all(clip)
    samples = list(V.sample_frames(clip, fps=4))
    # 6 s at 4 per second: t = 0, 0.25, ..., 5.75; the frame shown at t is
    # source frame floor(10 t).
    assert len(samples) == 24
    np.testing.assert_allclose([t for t, _ in samples], np.arange(24) / 4)
    for k, (t, frame) in enumerate(samples):
        np.testing.assert_array_equal(frame, decoded[int(np.floor(10 * k / 4))][1])
    # Faster than the source: frames repeat, the last one until 6 s.
    fast = list(V.sample_frames(clip, fps=20))
    assert len(fast) == 120
    np.testing.assert_array_equal(fast[119][1], decoded[59][1])
    np.testing.assert_array_equal(fast[3][1], decoded[1][1])


def test_variable_frame_rate(tmp_path):
    """Frames at irregular presentation times (ms): each sample takes the
    frame shown at its time, not the frame at index rate * t."""
    pts = [0, 100, 150, 400, 900]
    path = str(tmp_path / "vfr.mkv")
    with av.open(path, "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = s.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i + 20, np.uint8),
                                           format="rgb24")
            f.pts, f.time_base = p, fractions.Fraction(1, 1000)
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    levels = [int(round((frame.mean() - 20) / 40)) for _, frame in V.sample_frames(path, 10)]
    # t = 0 -> 0 ms frame; 0.1 -> 100; 0.2, 0.3 -> 150; 0.4 ... 0.8 -> 400; 0.9 -> 900
    assert levels[:10] == [0, 1, 2, 2, 3, 3, 3, 3, 3, 4]


# ---------------------------------------------------------------- flow


def test_flow_image_hand_worked():
    flow = np.array([[[0.0, 0.0], [5.0, 0.0]], [[-30.0, 20.0], [3.0, -4.0]]], np.float32)
    img = V.flow_image(flow, bound=20)
    np.testing.assert_allclose(img[0, 0], [127.5, 127.5, 0.0])
    np.testing.assert_allclose(img[0, 1], [127.5 + 5 / 20 * 127.5, 127.5, 5 / 20 * 255])
    np.testing.assert_allclose(img[1, 0], [0.0, 255.0, 255.0])  # truncated at the bound
    np.testing.assert_allclose(img[1, 1], [127.5 + 3 / 20 * 127.5, 127.5 - 4 / 20 * 127.5,
                                           5 / 20 * 255], rtol=1e-6)


def test_flow_still_and_panning(clip):
    """Between samples 0.2 s apart the pan moves the content 2 * PAN pixels
    to the left: dx is about -6.4, dy about 0; the stills give no flow."""
    frames = [f for _, f in V.sample_frames(clip, fps=5)]
    dx = []
    for a, b in zip(frames[:-1], frames[1:]):
        f = V.optical_flow(a, b)
        assert f.shape == (H, W, 2)  # below FLOW_SIDE: computed at full size
        inner = f[16:-16, 16:-16]  # away from the edge where content enters
        dx.append(float(inner[..., 0].mean()))
        if len(dx) in range(11, 19):
            assert abs(float(inner[..., 1].mean())) < 0.5
    dx = np.array(dx)
    # flow k is between samples k and k + 1; 9 -> 10 and 19 -> 20 are the cuts
    still = np.r_[dx[0:9], dx[20:29]]
    assert np.abs(still).max() < 0.2, still
    panning = dx[10:19]
    assert np.all((panning < -2 * PAN + 1.2) & (panning > -2 * PAN - 1.2)), panning
    assert V.flow_resolution(480, 640) == (128, 171)


# ------------------------------------------------------------ features


def test_features_follow_the_content(clip, backbone_variables):
    """fps 5, stride 2: 15 steps of 0.4 s. The RGB features jump where the
    scene changes (between steps 4|5 at 2 s and 9|10 at 4 s); the flow
    features of the two still scenes are the same (no motion, whatever the
    picture) and those of the pan differ from them."""
    out = _features(clip, backbone_variables)
    assert len(out) == 15 and out.rgb.shape == (15, 1024) and out.rgb.dtype == np.float32
    assert out.flow.shape == (15, 1024) and out.flow.dtype == np.float32
    assert out.feature_rate == 2.5 and out.fps == 5 and out.stride == 2
    np.testing.assert_allclose(out.times, np.arange(15) * 0.4, atol=1e-12)
    assert abs(out.duration - 6.0) < 1e-6 and out.source_fps == 10
    assert out.backbone == BACKBONE and np.isfinite(out.rgb).all()

    jumps = np.linalg.norm(np.diff(out.rgb, axis=0), axis=1)
    top = sorted(np.argsort(jumps)[-2:])
    assert abs(top[0] - 4) <= 1 and abs(top[1] - 9) <= 1, jumps

    still = np.r_[out.flow[0:4], out.flow[11:15]]
    pan = out.flow[6:10]
    spread = np.linalg.norm(still - still.mean(0), axis=1).max()
    apart = np.linalg.norm(pan - still.mean(0), axis=1).min()
    assert apart > 10 * spread, (spread, apart)
    cat_vs_astronaut = np.linalg.norm(out.rgb[1] - out.rgb[12])
    assert cat_vs_astronaut > 10 * spread


def test_batch_size_does_not_change_features(clip, backbone_variables):
    one = _features(clip, backbone_variables, fps=1, batch_size=1)
    four = _features(clip, backbone_variables, fps=1, batch_size=4)
    assert one.rgb.shape == (3, 1024)
    np.testing.assert_allclose(one.rgb, four.rgb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one.flow, four.flow, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------- errors


def _one_line_error(excinfo, *words):
    text = str(excinfo.value)
    assert "\n" not in text
    for w in words:
        assert w in text, text


def test_broken_files(clip, tmp_path, backbone_variables):
    raw = open(clip, "rb").read()
    cases = {"truncated.mp4": raw[:len(raw) // 2],
             "random.mp4": np.random.default_rng(0).bytes(20_000)}
    Image.fromarray(data.chelsea()).save(tmp_path / "photo.png")
    cases["photo.mp4"] = (tmp_path / "photo.png").read_bytes()
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError) as e:
            _features(path, backbone_variables)
        _one_line_error(e, str(path))

    with pytest.raises(FileNotFoundError) as e:
        V.features(tmp_path / "missing.mp4", progress=False)
    assert isinstance(e.value, ValueError)
    _one_line_error(e, "missing.mp4")


def test_empty_and_unsuitable_videos(tmp_path, backbone_variables):
    empty = V.write_video(tmp_path / "empty.avi", np.zeros((0, 48, 64, 3), np.uint8), 10)
    with pytest.raises(ValueError) as e:
        _features(empty, backbone_variables)
    _one_line_error(e, empty, "no decodable video frames")

    audio = str(tmp_path / "audio.wav")
    with av.open(audio, "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 8000
        for packet in list(s.encode(frame)) + list(s.encode()):
            c.mux(packet)
    with pytest.raises(ValueError) as e:
        _features(audio, backbone_variables)
    _one_line_error(e, audio, "no video stream")

    short = V.write_video(tmp_path / "short.mp4", np.zeros((3, 48, 64, 3), np.uint8), 10)
    with pytest.raises(ValueError) as e:  # 0.3 s at 5 fps: 2 frames < stride 4
        _features(short, backbone_variables, stride=4, flow=False)
    _one_line_error(e, short, "stride=4")


def test_bad_arguments(clip, tmp_path):
    for fps in (0, -1, float("nan")):
        with pytest.raises(ValueError) as e:
            V.features(clip, fps=fps, progress=False)
        _one_line_error(e, "fps=")
    with pytest.raises(KeyError, match="efficientnet_lite9"):
        V.features(clip, "efficientnet_lite9", progress=False)
    with pytest.raises(ValueError) as e:
        V.features(clip, "midas_small", progress=False)
    _one_line_error(e, "midas_small", "classifier")
    with pytest.raises(ValueError, match="even width"):
        V.write_video(tmp_path / "odd.mp4", np.zeros((2, 47, 64, 3), np.uint8), 10)
    with pytest.raises(ValueError, match="no frames"):
        V.write_video(tmp_path / "none.mp4", [], 10)
    assert not os.path.exists(tmp_path / "none.mp4")
