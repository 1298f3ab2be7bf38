import cv2
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from deepanon.detection import Detections, Detector
from deepanon.detection.compose import Tiled, Union
from deepanon.detection.tiling import cut_by_tile, merge_tiles, tile_spans, tiles


class WhiteRectangles(Detector):
    """A stand-in detector: every white rectangle on black is a 'face'; its box is exactly its pixels' extent."""

    def __init__(self) -> None:
        self.inputs: list[tuple[int, int]] = []

    def _detect(self, image: np.ndarray) -> Detections:
        self.inputs.append(image.shape[:2])
        count, _, stats, _ = cv2.connectedComponentsWithStats((image[:, :, 0] > 127).astype(np.uint8))
        x, y, w, h = stats[1:, :4].T.astype(np.float32)
        return Detections.from_boxes(np.stack([x, y, x + w, y + h], 1), np.full(count - 1, 0.9))


def draw(height: int, width: int, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = 255
    return image


@given(st.integers(1, 3000), st.integers(16, 1024), st.data())
def test_tiles_cover_with_overlap(length, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    spans = tile_spans(length, tile, overlap)
    starts, ends = spans[:, 0], spans[:, 1]
    assert starts[0] == 0 and ends[-1] == length
    assert (ends - starts <= tile).all() and len(set(ends - starts)) == 1  # balanced, never above the tile size
    assert (np.diff(starts) > 0).all()
    assert (ends[:-1] - starts[1:] >= overlap).all()  # neighbours share at least `overlap` px
    if len(spans) > 1:  # and no fewer spans would do
        assert (len(spans) - 1) * (tile - overlap) + overlap < length


def test_tiles_grid():
    rects = tiles(300, 500, 200, 60)
    # 500 px: 3 tiles of 200 would share only 50 px, so 4, balanced at 170 px; 300 px: 2 of 180
    assert rects.tolist()[:4] == [[0, 0, 170, 180], [110, 0, 280, 180], [220, 0, 390, 180], [330, 0, 500, 180]]
    assert len(rects) == 8 and rects[-1].tolist() == [330, 120, 500, 300]
    assert tiles(100, 100, 200, 60).tolist() == [[0, 0, 100, 100]]
    assert tiles(936, 1664, 1536, 128)[:, 2].tolist() == [896, 1664]  # 720p upscaled 1.3x: two halves, not 2 x 1536


def test_cut_by_tile_ignores_image_edges():
    rect = np.array([150, 0, 350, 200])
    boxes = np.array([[150, 10, 170, 30], [200, 0, 220, 20], [300, 180, 350, 200], [200, 50, 220, 70]], np.float32)
    assert cut_by_tile(boxes, rect, height=300, width=350).tolist() == [True, False, True, False]


def test_face_cut_by_tile_border_found_once_and_mapped_back_exactly():
    faces = [(180, 40, 215, 80), (10, 10, 40, 50), (460, 250, 500, 300), (320, 120, 346, 175)]  # all <= overlap
    inner = WhiteRectangles()
    found = Tiled(inner, tile=200, overlap=60).detect(draw(300, 500, faces))
    assert max(max(shape) for shape in inner.inputs) <= 200 and len(inner.inputs) == 8
    order = np.argsort(found.boxes[:, 0])
    np.testing.assert_array_equal(found.boxes[order], np.array(sorted(faces), np.float32))


def test_rescaled_tiles_map_back_exactly():
    faces = [(180, 40, 216, 80), (10, 10, 40, 50), (460, 250, 500, 300)]
    found = Tiled(WhiteRectangles(), scale=0.5, tile=120, overlap=40).detect(draw(300, 500, faces))
    np.testing.assert_array_equal(found.boxes[np.argsort(found.boxes[:, 0])], np.array(sorted(faces), np.float32))


def test_face_larger_than_overlap_is_never_lost():
    face = (120, 20, 260, 180)  # wider than the 60 px overlap: cut in every tile that holds it
    found = Tiled(WhiteRectangles(), tile=200, overlap=60).detect(draw(300, 500, [face]))
    assert len(found) >= 1
    covered = np.zeros((300, 500), bool)
    for x0, y0, x1, y1 in found.boxes.astype(int):
        covered[y0:y1, x0:x1] = True
    assert covered[face[1] : face[3], face[0] : face[2]].all()


def test_merge_tiles_drops_covered_cut_pieces_and_fuses_duplicates():
    whole = Detections.from_boxes(np.array([[100, 10, 130, 40], [300, 300, 320, 320]]), np.array([0.8, 0.6]))
    piece = Detections.from_boxes(np.array([[100, 10, 110, 40], [301, 300, 321, 320]]), np.array([0.9, 0.7]))
    merged = merge_tiles([whole, piece], [np.zeros(2, bool), np.array([True, False])], iou_threshold=0.4)
    assert len(merged) == 2
    np.testing.assert_array_equal(merged.boxes[np.argsort(merged.boxes[:, 0])][0], [100, 10, 130, 40])
    np.testing.assert_array_equal(merged.boxes[merged.scores == np.float32(0.7)][0], [300, 300, 321, 320])  # enclosing


def test_union_fuses_same_face_from_two_detectors():
    image = draw(100, 100, [(20, 20, 50, 60)])
    found = Union([WhiteRectangles(), WhiteRectangles()]).detect(image)
    np.testing.assert_array_equal(found.boxes, [[20, 20, 50, 60]])


def test_a_panorama_is_tiled_at_the_pass_scale_and_keeps_its_small_faces():
    inner = WhiteRectangles()
    faces = [(x, 300, x + 12, 312) for x in range(100, 16000, 400)]  # 40 faces of 12 px along a 16000×400 strip
    found = Tiled(inner, scale=1.3, tile=1536, overlap=128).detect(draw(400, 16000, faces))
    assert len(inner.inputs) == 15 and all(h == 520 and w <= 1536 for h, w in inner.inputs)  # 20800×520, 15 tiles
    np.testing.assert_allclose(found.boxes[np.argsort(found.boxes[:, 0])], faces, atol=1)


def test_an_overview_pass_is_looked_at_no_larger_than_max_side():
    inner = WhiteRectangles()
    face = (4000, 2000, 4600, 2800)
    found = Tiled(inner, scale=1.0, tile=1536, overlap=128, max_side=2048).detect(draw(3000, 8000, [face]))
    assert [h for h, _ in inner.inputs] == [768, 768]  # 8000×3000 seen as 2048×768: two tiles
    np.testing.assert_allclose(found.boxes, [face], atol=8000 / 2048)
