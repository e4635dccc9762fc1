"""Detection maths: boxes, anchors, DFL, the task-aligned assigner, the loss, post-processing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spikedrive.detection.assigner import TaskAlignedAssigner
from spikedrive.detection.boxes import aligned_ciou, box_to_dist, dist_to_box, pairwise_ciou
from spikedrive.detection.decode import decode_outputs, dfl_expectation, flatten_levels, make_anchors
from spikedrive.detection.loss import DetectionLoss, dfl_loss
from spikedrive.detection.postprocess import postprocess, select_detections


def ciou_reference(a: list[float], b: list[float]) -> float:
    """CIoU of two xyxy boxes from its definition (Zheng et al. 2020)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    iou = inter / (wa * ha + wb * hb - inter)
    rho2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    c2 = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    v = 4 / math.pi ** 2 * (math.atan(wb / hb) - math.atan(wa / ha)) ** 2
    alpha = v / (1 - iou + v)
    return iou - rho2 / c2 - alpha * v


def test_ciou_matches_its_definition():
    a, b = [10.0, 20.0, 50.0, 40.0], [15.0, 10.0, 45.0, 60.0]
    ref = ciou_reference(a, b)
    assert aligned_ciou(torch.tensor([a]), torch.tensor([b])).item() == pytest.approx(ref, abs=1e-5)
    assert pairwise_ciou(torch.tensor([a]), torch.tensor([b, a]))[0].tolist() == pytest.approx([ref, 1.0], abs=1e-5)
    with pytest.raises(ValueError, match=r"aligned_ciou: pred and target must both be \[N, 4\]"):
        aligned_ciou(torch.zeros(2, 4), torch.zeros(3, 4))


def test_distance_form_round_trips():
    points = torch.tensor([[12.0, 20.0]])
    boxes = torch.tensor([[2.0, 5.0, 30.0, 24.0]])
    dist = box_to_dist(boxes, points)
    assert dist.tolist() == [[10.0, 15.0, 18.0, 4.0]]
    assert torch.equal(dist_to_box(dist, points), boxes)
    assert box_to_dist(boxes, points, max_dist=12.0).tolist() == [[10.0, 12.0, 12.0, 4.0]]


def test_anchor_points_are_cell_centres():
    points, stride = make_anchors([(2, 3), (1, 2)], [8, 16])
    assert points.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5],
                               [0.5, 0.5], [1.5, 0.5]]
    assert stride.squeeze(1).tolist() == [8.0] * 6 + [16.0] * 2


def test_dfl_expectation_and_loss_against_reference():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 16)
    expect = (logits.softmax(-1) * torch.arange(16.0)).sum(-1)
    torch.testing.assert_close(dfl_expectation(logits), expect)
    target = torch.tensor([[0.0, 2.5, 7.25, 14.9]] * 3)
    ref = torch.zeros(3)
    for i in range(3):
        for side in range(4):
            y = target[i, side].item()
            lo = math.floor(y)
            logp = F.log_softmax(logits[i, side], -1)
            ref[i] += -((lo + 1 - y) * logp[lo] + (y - lo) * logp[lo + 1]) / 4
    torch.testing.assert_close(dfl_loss(logits, target), ref)


def one_level_output(dist_bins: list[int], cls_logits: list[float], h: int = 2, w: int = 2, reg_max: int = 16) -> torch.Tensor:
    """A raw map ``[1, 4 * reg_max + C, h, w]`` whose every cell puts all mass on ``dist_bins``."""
    out = torch.full((1, 4 * reg_max + len(cls_logits), h, w), -30.0)
    for side, d in enumerate(dist_bins):
        out[0, side * reg_max + d] = 30.0
    out[0, 4 * reg_max:] = torch.tensor(cls_logits).view(-1, 1, 1)
    return out


def test_decoder_gives_boxes_in_input_pixels():
    out = one_level_output([1, 2, 3, 4], [5.0, -5.0])
    boxes, cls = decode_outputs([out], [8], 16, 2)
    # cell (x=1, y=0): centre (1.5, 0.5) in grid units = (12, 4) px; l, t, r, b = 8, 16, 24, 32 px
    torch.testing.assert_close(boxes[0, 1], torch.tensor([4.0, -12.0, 36.0, 36.0]))
    assert cls.shape == (1, 4, 2) and cls[0, 0].tolist() == [5.0, -5.0]
    with pytest.raises(ValueError, match=r"flatten_levels: level 0 must be \[B, 4\*reg_max \+ num_classes = 66, H, W\]"):
        flatten_levels([torch.zeros(1, 65, 2, 2)], 16, 2)


def test_assigner_picks_topk_anchors_inside_the_box_and_normalises_scores():
    points, _ = make_anchors([(4, 4)], [8])
    points = points * 8  # pixels: centres at 4, 12, 20, 28
    gt = torch.tensor([[[0.0, 0.0, 16.0, 16.0]]])  # contains the 4 centres (4|12, 4|12)
    inside = torch.tensor([0, 1, 4, 5])
    pred_boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0]]).repeat(16, 1)
    pred_boxes[5] = torch.tensor([0.0, 0.0, 16.0, 16.0])  # a perfect box at anchor 5
    pred_scores = torch.full((1, 16, 2), 0.5)
    got = TaskAlignedAssigner(topk=2)(pred_scores, pred_boxes[None], points, torch.tensor([[1]]), gt,
                                      torch.tensor([[True]]))
    fg = got.fg[0].nonzero().squeeze(1)
    assert len(fg) == 2 and set(fg.tolist()) <= set(inside.tolist()) and 5 in fg.tolist()
    assert got.labels[0, fg].tolist() == [1, 1]
    # the best anchor's soft target is the box's best IoU (1.0 here), in the box's class only
    assert got.scores[0, 5].tolist() == pytest.approx([0.0, 1.0], abs=1e-5)
    assert got.scores[0, ~got.fg[0]].abs().sum() == 0


def test_assigner_gives_a_shared_anchor_to_the_box_it_overlaps_most():
    points = torch.tensor([[10.0, 10.0]])
    boxes = torch.tensor([[[0.0, 0.0, 20.0, 20.0], [5.0, 5.0, 40.0, 40.0]]])
    pred = torch.tensor([[[1.0, 1.0, 21.0, 21.0]]])  # overlaps the first box far more
    got = TaskAlignedAssigner(topk=1)(torch.full((1, 1, 1), 0.5), pred, points, torch.tensor([[0, 0]]), boxes,
                                      torch.tensor([[True, True]]))
    assert got.fg.tolist() == [[True]] and got.gt_index.tolist() == [[0]]
    torch.testing.assert_close(got.boxes[0, 0], boxes[0, 0])


def test_loss_is_finite_without_objects_and_lower_for_a_right_prediction():
    loss_fn = DetectionLoss(num_classes=2, strides=(8,))
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    out = one_level_output([1, 1, 1, 1], [-8.0, -8.0]).requires_grad_()
    loss, logs = loss_fn([out], empty)
    loss.backward()
    assert torch.isfinite(loss) and logs["box"] == 0 and logs["dfl"] == 0 and logs["cls"] > 0
    # one box seen from cell (1, 1), centre (12, 12) px: every side 8 px = 1 bin away
    target = [{"boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]), "labels": torch.tensor([0])}]
    right = one_level_output([1, 1, 1, 1], [-8.0, -8.0])
    right[0, 64, 1, 1] = 4.0  # class 0 at that cell only
    wrong = one_level_output([6, 6, 6, 6], [-8.0, -8.0])
    wrong[0, 65, 1, 1] = 4.0  # the other class
    l_right, logs_right = loss_fn([right], target)
    l_wrong, _ = loss_fn([wrong], target)
    assert l_right < l_wrong
    assert logs_right["box"] == pytest.approx(0.0, abs=1e-4)  # the assigned anchor's box is exact
    with pytest.raises(ValueError, match="DetectionLoss: 2 targets for a batch of 1"):
        loss_fn([right], target * 2)


def test_nms_per_class_confidence_and_max_detections():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 10, 10], [0.0, 0, 10, 10], [50.0, 50, 60, 60]])
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.0005, 0.0]])
    det = select_detections(boxes, scores, conf=0.001, iou=0.5)
    # box 1 is suppressed by box 0 (same class, IoU 0.81); box 2 is another class; box 3 is below conf
    assert det["scores"].tolist() == pytest.approx([0.9, 0.7]) and det["labels"].tolist() == [0, 1]
    assert len(select_detections(boxes, scores, conf=0.001, iou=0.5, max_det=1)["scores"]) == 1
    multi = select_detections(boxes, torch.tensor([[0.9, 0.6]] + [[0.0, 0.0]] * 3), multi_label=True)
    assert sorted(multi["labels"].tolist()) == [0, 1]
    dets = postprocess([one_level_output([1, 2, 3, 4], [5.0, -5.0])], [8], 16, 2, iou=0.99)
    assert len(dets) == 1 and dets[0]["labels"].tolist() == [0] * 4
