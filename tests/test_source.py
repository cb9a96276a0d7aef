import threading

import av
import numpy as np
import pytest

from faceedge.edge.source import FrameBuffer, FramePacket, FullFrame, StreamEvent, detector_shape, mask_url


def packet(i: int) -> FramePacket:
    return FramePacket("s", i, None, 0.0, np.zeros((2, 2, 3), np.uint8), None)


def test_drop_oldest_keeps_newest_frames_counts_drops_and_never_drops_events():
    drops = []
    buffer = FrameBuffer(3, block=False, wake=threading.Event(), on_drop=lambda: drops.append(1))
    stop = threading.Event()
    buffer.put_frame(packet(0), stop)
    buffer.put_event(StreamEvent("s", "disconnected"))
    for i in range(1, 6):
        buffer.put_frame(packet(i), stop)
    items = []
    while (item := buffer.get_nowait()) is not None:
        items.append(item)
    assert len(drops) == 3
    assert [getattr(i, "index", i.__class__.__name__) for i in items] == ["StreamEvent", 3, 4, 5]


def test_block_policy_waits_for_room_instead_of_dropping():
    buffer = FrameBuffer(1, block=True, wake=threading.Event(), on_drop=lambda: pytest.fail("dropped"))
    stop = threading.Event()
    buffer.put_frame(packet(0), stop)
    writer = threading.Thread(target=buffer.put_frame, args=(packet(1), stop))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive(), "a blocking buffer accepted a frame beyond its capacity"
    assert buffer.get_nowait().index == 0
    writer.join(2)
    assert buffer.get_nowait().index == 1


def test_mask_url_hides_credentials_only():
    assert mask_url("rtsp://admin:s3cret@10.0.0.5:554/stream1") == "rtsp://***@10.0.0.5:554/stream1"
    assert mask_url("rtsp://10.0.0.5/stream1") == "rtsp://10.0.0.5/stream1"
    assert "s3cret" not in mask_url("rtsp://user:s3cret@cam/x?a=1")


def test_detector_shape_keeps_aspect_and_even_sizes():
    assert detector_shape(1920, 1080, 640) == (640, 360)
    width, height = detector_shape(1081, 1921, 640)
    assert height == 640 and width % 2 == 0


def test_crop_bgr_matches_full_frame_conversion(data_dir):
    with av.open(str(data_dir / "video" / "people_1080p.mp4")) as container:
        frame = next(container.decode(video=0))
    full_bgr = frame.to_ndarray(format="bgr24")
    crop, (ox, oy) = FullFrame(frame).crop_bgr(301, 199, 701, 455)
    assert (ox, oy) == (300, 198)
    reference = full_bgr[oy:oy + crop.shape[0], ox:ox + crop.shape[1]]
    # Both are BT.601 YUV->BGR conversions; they may round differently by a few levels.
    assert np.abs(crop.astype(int) - reference.astype(int)).mean() < 3


class _Packet:
    def __init__(self, frames):
        self.frames = frames

    def decode(self):
        if self.frames is None:
            raise av.error.InvalidDataError(-1094995529, "Invalid data found when processing input")
        return self.frames


class _Container:
    def __init__(self, packets):
        self.packets = packets

    def demux(self, stream):
        return iter(self.packets)


def test_rejected_packets_are_skipped_and_counted_until_a_long_run():
    from faceedge.edge.config import SourceConfig, StreamConfig
    from faceedge.edge.metrics import Metrics
    from faceedge.edge.source import MAX_BAD_PACKETS, VideoSource

    metrics = Metrics()
    source = VideoSource(StreamConfig(id="cam", url="rtsp://127.0.0.1/x"), SourceConfig(), 640, 1,
                         FrameBuffer(4, False, threading.Event()), metrics, threading.Event())
    damaged = [_Packet(["f1"]), _Packet(None), _Packet(None), _Packet(["f2", "f3"]), _Packet(None)]
    assert list(source._frames(_Container(damaged), None)) == ["f1", "f2", "f3"]
    assert metrics.value("faceedge_packets_skipped_total", stream="cam") == 3
    dead = [_Packet(["f1"])] + [_Packet(None)] * MAX_BAD_PACKETS + [_Packet(["never"])]
    with pytest.raises(av.error.InvalidDataError):
        list(source._frames(_Container(dead), None))
