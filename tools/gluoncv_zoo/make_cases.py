"""Real GluonCV 0.10 and InsightFace-style MXNet models, exported with real MXNet, as test cases.

Run with the interpreter that has ``mxnet==1.9.1`` and ``gluoncv==0.10.5.post0``::

    python tools/gluoncv_zoo/make_cases.py OUT_DIR [--only NAME,NAME...] [--list]

Each case is built with ``pretrained=False`` (and ``pretrained_base=False``: nothing is downloaded),
given random weights and non-trivial BatchNorm statistics (random running mean and variance, gamma
and beta), hybridized, run once by MXNet on a fixed random input and exported. ``OUT_DIR/NAME/``
then holds ``model-symbol.json``, ``model-0000.params``, ``input.npy`` and ``output0.npy``,
``output1.npy``... (MXNet's outputs, in the graph's head order), and ``OUT_DIR/catalogue.json``
records, per case, its family, input shape, the operators its graph uses (with counts), and any
error MXNet itself raised while building it.

Symbol-API checkpoints (``mx.sym`` graphs saved with ``mx.model.save_checkpoint``, ``arg:``/``aux:``
keys): an mx-rcnn-style Faster R-CNN (RPN, ``Proposal``, ``ROIPooling``; its second input
``im_info`` is saved as ``input_im_info.npy``), and InsightFace-style recognition models built the
way InsightFace built them: scalar input normalisation (``(data - 127.5) * 0.0078125``), PReLU,
BatchNorm with ``fix_gamma=True`` on the embedding, a depthwise "global" convolution
(MobileFaceNet) and a fully connected embedding. Their gamma under ``fix_gamma`` holds random values
that MXNet ignores, so a converter that uses them gives wrong embeddings.

A case already present (its ``output0.npy`` exists and its recipe is unchanged) is not rebuilt.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
import time
import traceback

import numpy as np

#: name -> (family, input shape, gluoncv model name, extra kwargs); the kwarg ``_set`` maps dotted
#: attribute paths of the built net to values set after construction (smaller test-time settings)
GLUONCV_CASES: dict[str, tuple[str, tuple[int, ...], str, dict]] = {
    # classification
    "resnet18_v1": ("classification", (1, 3, 64, 64), "resnet18_v1", {}),
    "resnet50_v2": ("classification", (1, 3, 64, 64), "resnet50_v2", {}),
    "resnet50_v1b": ("classification", (1, 3, 64, 64), "resnet50_v1b", {}),
    "resnet50_v1d": ("classification", (1, 3, 64, 64), "resnet50_v1d", {}),
    "resnext50_32x4d": ("classification", (1, 3, 64, 64), "resnext50_32x4d", {}),
    "se_resnet18_v1": ("classification", (1, 3, 64, 64), "se_resnet18_v1", {}),
    "se_resnext50_32x4d": ("classification", (1, 3, 64, 64), "se_resnext50_32x4d", {}),
    "resnest14": ("classification", (1, 3, 64, 64), "resnest14", {}),
    "mobilenet1.0": ("classification", (1, 3, 64, 64), "mobilenet1.0", {}),
    "mobilenetv2_1.0": ("classification", (1, 3, 64, 64), "mobilenetv2_1.0", {}),
    "mobilenetv3_small": ("classification", (1, 3, 64, 64), "mobilenetv3_small", {}),
    "mobilenetv3_large": ("classification", (1, 3, 64, 64), "mobilenetv3_large", {}),
    "densenet121": ("classification", (1, 3, 224, 224), "densenet121", {}),
    "darknet53": ("classification", (1, 3, 64, 64), "darknet53", {}),
    "inceptionv3": ("classification", (1, 3, 299, 299), "inceptionv3", {}),
    "googlenet": ("classification", (1, 3, 224, 224), "googlenet", {}),
    "xception": ("classification", (1, 3, 64, 64), "xception", {}),
    "vgg16_bn": ("classification", (1, 3, 32, 32), "vgg16_bn", {}),
    "alexnet": ("classification", (1, 3, 96, 96), "alexnet", {}),
    "squeezenet1.0": ("classification", (1, 3, 224, 224), "squeezenet1.0", {}),
    "shufflenet_v2": ("classification", (1, 3, 64, 64), "shufflenet_v2", {}),
    "cifar_resnet20_v1": ("classification", (1, 3, 32, 32), "cifar_resnet20_v1", {}),
    "cifar_wideresnet16_10": ("classification", (1, 3, 32, 32), "cifar_wideresnet16_10", {}),
    "cifar_resnext29_16x64d": ("classification", (1, 3, 32, 32), "cifar_resnext29_16x64d", {}),
    "senet_154": ("classification", (1, 3, 64, 64), "senet_154", {}),
    "residualattentionnet56": ("classification", (1, 3, 224, 224), "residualattentionnet56", {}),
    "nasnet_4_1056": ("classification", (1, 3, 64, 64), "nasnet_4_1056", {}),
    "hrnet_w18_small_v1_c": ("classification", (1, 3, 64, 64), "hrnet_w18_small_v1_c", {}),
    "dla34": ("classification", (1, 3, 64, 64), "dla34", {}),
    "resnet50_v1b_gn": ("classification", (1, 3, 64, 64), "resnet50_v1b_gn", {}),
    "resnet18_v1b_0.89": ("classification", (1, 3, 64, 64), "resnet18_v1b_0.89", {}),
    "cifar_residualattentionnet56": ("classification", (1, 3, 32, 32), "cifar_residualattentionnet56", {}),
    "mobilenet0.25": ("classification", (1, 3, 64, 64), "mobilenet0.25", {}),
    "resnet50_v1s": ("classification", (1, 3, 64, 64), "resnet50_v1s", {}),
    "se_resnet18_v2": ("classification", (1, 3, 64, 64), "se_resnet18_v2", {}),
    "cifar_resnet20_v2": ("classification", (1, 3, 32, 32), "cifar_resnet20_v2", {}),
    "mobilenetv2_0.25": ("classification", (1, 3, 64, 64), "mobilenetv2_0.25", {}),
    "shufflenet_v1": ("classification", (1, 3, 64, 64), "shufflenet_v1", {}),
    # pose
    "simple_pose_resnet18_v1b": ("pose", (1, 3, 64, 48), "simple_pose_resnet18_v1b", {}),
    "mobile_pose_mobilenetv3_small": ("pose", (1, 3, 64, 48), "mobile_pose_mobilenetv3_small", {}),
    "alpha_pose_resnet101_v1b_coco": ("pose", (1, 3, 64, 48), "alpha_pose_resnet101_v1b_coco", {}),
    "simple_pose_resnet50_v1d": ("pose", (1, 3, 64, 48), "simple_pose_resnet50_v1d", {}),
    "mobile_pose_resnet18_v1b": ("pose", (1, 3, 64, 48), "mobile_pose_resnet18_v1b", {}),
    # detection
    "ssd_300_mobilenet0.25_voc": ("detection", (1, 3, 128, 128), "ssd_300_mobilenet0.25_voc", {}),
    "ssd_512_mobilenet1.0_voc": ("detection", (1, 3, 128, 128), "ssd_512_mobilenet1.0_voc", {}),
    "ssd_300_vgg16_atrous_voc": ("detection", (1, 3, 300, 300), "ssd_300_vgg16_atrous_voc", {}),
    "ssd_512_resnet50_v1_voc": ("detection", (1, 3, 128, 128), "ssd_512_resnet50_v1_voc", {}),
    "yolo3_mobilenet0.25_voc": ("detection", (1, 3, 128, 128), "yolo3_mobilenet0.25_voc", {}),
    "yolo3_darknet53_voc": ("detection", (1, 3, 128, 128), "yolo3_darknet53_voc", {}),
    "center_net_resnet18_v1b_voc": ("detection", (1, 3, 128, 128), "center_net_resnet18_v1b_voc", {}),
    "center_net_mobilenetv3_small_duc_voc": ("detection", (1, 3, 128, 128),
                                             "center_net_mobilenetv3_small_duc_voc", {}),
    "yolo3_mobilenet1.0_coco": ("detection", (1, 3, 128, 128), "yolo3_mobilenet1.0_coco", {}),
    "center_net_dla34_voc": ("detection", (1, 3, 128, 128), "center_net_dla34_voc", {}),
    "faster_rcnn_fpn_resnet50_v1b_coco": ("detection", (1, 3, 128, 128), "faster_rcnn_fpn_resnet50_v1b_coco",
                                          {"_set": {"rpn._test_pre_nms": 300, "rpn._test_post_nms": 50,
                                                    "_rpn_test_post_nms": 50}}),
    "faster_rcnn_resnet50_v1b_voc": ("detection", (1, 3, 128, 128), "faster_rcnn_resnet50_v1b_voc",
                                     {"_set": {"rpn._test_pre_nms": 300, "rpn._test_post_nms": 50,
                                              "_rpn_test_post_nms": 50}}),
    # semantic segmentation
    "fcn_resnet50_voc": ("segmentation", (1, 3, 64, 64), "fcn_resnet50_voc", {"crop_size": 64}),
    "psp_resnet50_ade": ("segmentation", (1, 3, 64, 64), "psp_resnet50_ade", {"crop_size": 64}),
    "deeplab_resnet50_ade": ("segmentation", (1, 3, 64, 64), "deeplab_resnet50_ade", {"crop_size": 64}),
    "deeplab_v3b_plus_wideresnet_citys": ("segmentation", (1, 3, 64, 64),
                                          "deeplab_v3b_plus_wideresnet_citys", {"crop_size": 64}),
    "icnet_resnet50_citys": ("segmentation", (1, 3, 96, 96), "icnet_resnet50_citys",
                             {"height": 96, "width": 96}),
    "hrnet_w18_small_v1_s": ("segmentation", (1, 3, 64, 64), "hrnet_w18_small_v1_s", {}),
    "deeplab_resnest50_ade": ("segmentation", (1, 3, 64, 64), "deeplab_resnest50_ade", {"crop_size": 64}),
    "fastscnn_citys": ("segmentation", (1, 3, 64, 64), "fastscnn_citys", {"height": 64, "width": 64}),
    "danet_resnet50_citys": ("segmentation", (1, 3, 64, 64), "danet_resnet50_citys", {"crop_size": 64}),
    # monocular depth
    "monodepth2_resnet18_kitti_stereo_640x192": ("depth", (1, 3, 64, 96),
                                                 "monodepth2_resnet18_kitti_stereo_640x192", {}),
}

#: name -> (family, input shape): symbol-API checkpoints saved with ``mx.model.save_checkpoint``:
#: InsightFace-style recognition (``insightface_symbol``) and an mx-rcnn-style Faster R-CNN
#: (``faster_rcnn_symbol``, whose second input ``im_info`` is ``[[height, width, 1]]``)
SYMBOL_CASES: dict[str, tuple[str, tuple[int, ...]]] = {
    "insightface_resnet": ("recognition", (2, 3, 32, 32)),
    "insightface_mobilefacenet": ("recognition", (2, 3, 32, 32)),
    "faster_rcnn_symbol": ("detection", (1, 3, 64, 80)),
}

ALL_CASES = {**{k: v[:2] for k, v in GLUONCV_CASES.items()}, **SYMBOL_CASES}


#: Bump when the way cases are built changes (initialisation, export), so cached cases are rebuilt.
RECIPE_VERSION = 8


def _recipe_digest(name: str) -> str:
    """Changes when a case's recipe changes, so stale cached cases are rebuilt."""
    recipe = GLUONCV_CASES.get(name) or SYMBOL_CASES[name]
    return hashlib.sha256(f"{RECIPE_VERSION}:{name}:{recipe!r}".encode()).hexdigest()[:16]


def _seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def _randomise(params, rng) -> None:
    """Random weights everywhere; BatchNorm/GroupNorm statistics and affine terms far from 0/1."""
    import mxnet as mx
    for key, param in params.items():
        shape = param.shape
        if key.endswith(("running_mean", "moving_mean")):
            value = rng.normal(0, 0.2, shape)
        elif key.endswith(("running_var", "moving_var")):
            value = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("gamma"):
            value = rng.uniform(0.6, 1.4, shape)
        elif key.endswith(("beta", "bias")):
            value = rng.normal(0, 0.1, shape)
        elif key.endswith(("alpha",)):  # PReLU slopes
            value = rng.uniform(0.05, 0.4, shape)
        elif key.endswith("weight") and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        else:
            continue  # constants (anchors, offsets) keep what the model gave them
        param.set_data(mx.nd.array(value.astype(np.float32)))


def _calibrate_batch_norm(net, x, rng) -> None:
    """Running statistics that keep every layer's output near unit scale, and are not trivial.

    Random weights with arbitrary statistics make deep nets' activations grow to the hundreds,
    where float32 rounding alone moves a sigmoid or an NMS decision. Each BatchNorm's statistics
    are set by a pre-forward hook just before it runs (so downstream layers see calibrated
    upstream ones): the variance is the layer's mean square times a random 0.5-1.5 per channel,
    the mean a random fifth of the layer's scale. A convolution or dense layer whose input is far
    from unit scale has its weights divided by that scale.
    """
    import mxnet as mx
    from mxnet.gluon import nn

    def hook(block, inputs):
        data = inputs[0].asnumpy().astype(np.float64)
        axis = block._kwargs.get("axis", 1) % data.ndim
        # one scale per layer, and a mean that is not the data's: statistics measured per channel
        # on one small input would make BatchNorm subtract nearly equal numbers and blow the
        # rounding of a nearly constant channel up to the size of the others
        scale = float((data ** 2).mean()) + 1e-6
        mean = 0.2 * np.sqrt(scale) * rng.standard_normal(data.shape[axis])
        var = scale * rng.uniform(0.5, 1.5, data.shape[axis])
        block.running_mean.set_data(mx.nd.array(mean.astype(np.float32)))
        block.running_var.set_data(mx.nd.array(var.astype(np.float32)))

    def rescale(block, inputs):
        # layers without a BatchNorm after them (VGG's SSD) would let activations grow with depth
        rms = float(np.sqrt(np.mean(inputs[0].asnumpy().astype(np.float64) ** 2)))
        if rms > 4 or 0 < rms < 0.25:
            block.weight.set_data(block.weight.data() / rms)

    handles = []

    def attach(block):
        if isinstance(block, nn.BatchNorm):
            handles.append(block.register_forward_pre_hook(hook))
        elif isinstance(block, (nn.Conv2D, nn.Dense)):
            handles.append(block.register_forward_pre_hook(rescale))
    net.apply(attach)
    net(mx.nd.array(x))
    for handle in handles:
        handle.detach()


def _ops_of(symbol_json: str) -> dict[str, int]:
    graph = json.loads(symbol_json)
    counts = collections.Counter(node["op"] for node in graph["nodes"] if node["op"] != "null")
    return dict(sorted(counts.items()))


def build_gluoncv(name: str, out: str) -> dict:
    import mxnet as mx
    from gluoncv import model_zoo
    family, shape, model_name, kwargs = GLUONCV_CASES[name]
    kwargs = dict(kwargs)
    settings = kwargs.pop("_set", {})
    options = [dict(pretrained=False, pretrained_base=False, **kwargs), dict(pretrained=False, **kwargs)]
    net, errors = None, []
    for option in options:
        try:
            net = model_zoo.get_model(model_name, **option)
            break
        except (TypeError, Warning) as exc:  # classification models take no pretrained_base
            errors.append(str(exc))
    if net is None:
        raise RuntimeError("; ".join(errors))
    for path, value in settings.items():
        owner_path, _, attr = path.rpartition(".")
        owner = net
        for part in filter(None, owner_path.split(".")):
            owner = getattr(owner, part)
        setattr(owner, attr, value)
    mx.random.seed(_seed(name) % (2 ** 31))
    # every weight is redrawn by _randomise; Uniform only gives deferred parameters their first values
    net.initialize(mx.init.Uniform(0.05), force_reinit=False)
    rng = np.random.default_rng(_seed(name))
    x = rng.standard_normal(shape).astype(np.float32)
    net(mx.nd.array(x))  # shapes of deferred parameters, imperatively
    for param in net.collect_params().values():
        if param._deferred_init and any(d == 0 for d in param.shape):
            # a parameter the forward pass never uses (monodepth2's encoder head): any shape will do
            param.shape = tuple(d or 1 for d in param.shape)
            param._finish_deferred_init()
    _randomise(net.collect_params(), rng)
    _calibrate_batch_norm(net, x, rng)
    net.hybridize(static_alloc=False)
    outputs = net(mx.nd.array(x))
    prefix = os.path.join(out, "model")
    net.export(prefix, epoch=0)
    return _finish(out, family, x, outputs, prefix)


def insightface_symbol(name: str):
    """A recognition network written with ``mx.sym`` as InsightFace's symbol files wrote them."""
    import mxnet as mx
    data = mx.sym.Variable("data")
    body = data - 127.5
    body = body * 0.0078125

    def conv_bn_prelu(x, filters, kernel, stride, pad, group, label, act=True):
        x = mx.sym.Convolution(x, num_filter=filters, kernel=kernel, stride=stride, pad=pad, num_group=group,
                               no_bias=True, name=f"{label}_conv2d")
        x = mx.sym.BatchNorm(x, fix_gamma=False, eps=2e-5, momentum=0.9, name=f"{label}_batchnorm")
        if act:
            x = mx.sym.LeakyReLU(x, act_type="prelu", name=f"{label}_relu")
        return x

    if name == "insightface_resnet":  # fresnet's "E" output after residual units
        body = conv_bn_prelu(body, 16, (3, 3), (1, 1), (1, 1), 1, "conv0")
        for unit, (filters, stride) in enumerate([(16, (1, 1)), (32, (2, 2))]):
            bn1 = mx.sym.BatchNorm(body, fix_gamma=False, eps=2e-5, momentum=0.9, name=f"stage1_unit{unit}_bn1")
            conv1 = mx.sym.Convolution(bn1, num_filter=filters, kernel=(3, 3), stride=(1, 1), pad=(1, 1),
                                       no_bias=True, name=f"stage1_unit{unit}_conv1")
            bn2 = mx.sym.BatchNorm(conv1, fix_gamma=False, eps=2e-5, momentum=0.9, name=f"stage1_unit{unit}_bn2")
            act1 = mx.sym.LeakyReLU(bn2, act_type="prelu", name=f"stage1_unit{unit}_relu1")
            conv2 = mx.sym.Convolution(act1, num_filter=filters, kernel=(3, 3), stride=stride, pad=(1, 1),
                                       no_bias=True, name=f"stage1_unit{unit}_conv2")
            bn3 = mx.sym.BatchNorm(conv2, fix_gamma=False, eps=2e-5, momentum=0.9, name=f"stage1_unit{unit}_bn3")
            if stride == (1, 1):
                shortcut = body
            else:
                shortcut = mx.sym.Convolution(body, num_filter=filters, kernel=(1, 1), stride=stride,
                                              no_bias=True, name=f"stage1_unit{unit}_conv1sc")
                shortcut = mx.sym.BatchNorm(shortcut, fix_gamma=False, eps=2e-5, momentum=0.9,
                                            name=f"stage1_unit{unit}_sc")
            body = bn3 + shortcut
        bn1 = mx.sym.BatchNorm(body, fix_gamma=False, eps=2e-5, momentum=0.9, name="bn1")
        drop = mx.sym.Dropout(bn1, p=0.4)
        fc1 = mx.sym.FullyConnected(drop, num_hidden=64, name="pre_fc1")
    else:  # fmobilefacenet: depthwise separable blocks, then the depthwise "global" convolution
        body = conv_bn_prelu(body, 16, (3, 3), (2, 2), (1, 1), 1, "conv_1")
        body = conv_bn_prelu(body, 16, (3, 3), (1, 1), (1, 1), 16, "conv_2_dw")
        body = conv_bn_prelu(body, 32, (1, 1), (1, 1), (0, 0), 1, "conv_3")
        body = conv_bn_prelu(body, 32, (3, 3), (2, 2), (1, 1), 32, "conv_4_dw")
        body = conv_bn_prelu(body, 64, (1, 1), (1, 1), (0, 0), 1, "conv_6sep")
        body = conv_bn_prelu(body, 64, (8, 8), (1, 1), (0, 0), 64, "conv_6dw7_7", act=False)
        fc1 = mx.sym.FullyConnected(body, num_hidden=48, name="pre_fc1")
    return mx.sym.BatchNorm(fc1, fix_gamma=True, eps=2e-5, momentum=0.9, name="fc1")


def faster_rcnn_symbol():
    """A small Faster R-CNN written as mx-rcnn's test symbols were: RPN, Proposal, ROIPooling, heads."""
    import mxnet as mx
    anchors, classes = 9, 4
    data, im_info = mx.sym.Variable("data"), mx.sym.Variable("im_info")
    body = data
    for index, filters in enumerate((16, 32, 32)):
        body = mx.sym.Convolution(body, num_filter=filters, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                  name=f"conv{index}")
        body = mx.sym.Activation(body, act_type="relu", name=f"relu{index}")
    rpn = mx.sym.Activation(mx.sym.Convolution(body, num_filter=32, kernel=(3, 3), pad=(1, 1), name="rpn_conv_3x3"),
                            act_type="relu", name="rpn_relu")
    score = mx.sym.Convolution(rpn, num_filter=2 * anchors, kernel=(1, 1), name="rpn_cls_score")
    bbox = mx.sym.Convolution(rpn, num_filter=4 * anchors, kernel=(1, 1), name="rpn_bbox_pred")
    score = mx.sym.Reshape(score, shape=(0, 2, -1, 0), name="rpn_cls_score_reshape")
    prob = mx.sym.SoftmaxActivation(score, mode="channel", name="rpn_cls_prob")
    prob = mx.sym.Reshape(prob, shape=(0, 2 * anchors, -1, 0), name="rpn_cls_prob_reshape")
    rois = mx.sym.contrib.Proposal(cls_prob=prob, bbox_pred=bbox, im_info=im_info, name="rois", feature_stride=8,
                                   scales=(2, 4, 8), ratios=(0.5, 1, 2), rpn_pre_nms_top_n=200,
                                   rpn_post_nms_top_n=24, threshold=0.7, rpn_min_size=4)
    pooled = mx.sym.ROIPooling(body, rois, pooled_size=(4, 4), spatial_scale=0.125, name="roi_pool")
    fc = mx.sym.Activation(mx.sym.FullyConnected(mx.sym.flatten(pooled), num_hidden=64, name="fc6"),
                           act_type="relu", name="relu6")
    cls_prob = mx.sym.softmax(mx.sym.FullyConnected(fc, num_hidden=classes, name="cls_score"), name="cls_prob")
    bbox_pred = mx.sym.FullyConnected(fc, num_hidden=4 * classes, name="bbox_pred")
    return mx.sym.Group([rois, mx.sym.Reshape(cls_prob, shape=(1, -1, classes), name="cls_prob_reshape"),
                         mx.sym.Reshape(bbox_pred, shape=(1, -1, 4 * classes), name="bbox_pred_reshape")])


def build_symbol(name: str, out: str) -> dict:
    import mxnet as mx
    family, shape = SYMBOL_CASES[name]
    symbol = faster_rcnn_symbol() if name == "faster_rcnn_symbol" else insightface_symbol(name)
    rng = np.random.default_rng(_seed(name))
    extra = {"im_info": np.array([[shape[2], shape[3], 1.0]], np.float32)} \
        if "im_info" in symbol.list_arguments() else {}
    arg_shapes, _, aux_shapes = symbol.infer_shape(data=shape, **{k: v.shape for k, v in extra.items()})
    args = {}
    for key, arg_shape in zip(symbol.list_arguments(), arg_shapes):
        if key == "data" or key in extra:
            continue
        if key.endswith("gamma"):  # random under fix_gamma too: MXNet ignores them there
            value = rng.uniform(0.6, 1.4, arg_shape)
        elif key.endswith(("beta", "bias")):
            value = rng.normal(0, 0.1, arg_shape)
        elif key.endswith("alpha"):
            value = rng.uniform(0.05, 0.4, arg_shape)
        else:
            value = rng.normal(0, np.sqrt(2.0 / max(int(np.prod(arg_shape[1:])), 1)), arg_shape)
        args[key] = mx.nd.array(value.astype(np.float32))
    aux = {}
    for key, aux_shape in zip(symbol.list_auxiliary_states(), aux_shapes):
        value = rng.normal(0, 0.2, aux_shape) if key.endswith("mean") else rng.uniform(0.5, 1.5, aux_shape)
        aux[key] = mx.nd.array(value.astype(np.float32))
    if family == "recognition":
        x = rng.uniform(0, 255, shape).astype(np.float32)  # pixels, as InsightFace fed them
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    prefix = os.path.join(out, "model")
    mx.model.save_checkpoint(prefix, 0, symbol, args, aux)
    feeds = dict(args, data=mx.nd.array(x), **{k: mx.nd.array(v) for k, v in extra.items()})
    executor = symbol.bind(mx.cpu(), feeds, aux_states=aux, grad_req="null")
    outputs = executor.forward(is_train=False)
    for key, value in extra.items():
        np.save(os.path.join(out, f"input_{key}.npy"), value)
    entry = _finish(out, family, x, outputs, prefix)
    entry["inputs"] = ["data", *extra]
    return entry


def _finish(out: str, family: str, x: np.ndarray, outputs, prefix: str) -> dict:
    import mxnet as mx
    if isinstance(outputs, mx.nd.NDArray):
        outputs = [outputs]
    flat = []

    def walk(value):
        if isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        else:
            flat.append(value.asnumpy())
    walk(outputs)
    np.save(os.path.join(out, "input.npy"), x)
    for index, array in enumerate(flat):
        np.save(os.path.join(out, f"output{index}.npy"), array)
    with open(prefix + "-symbol.json") as handle:
        ops = _ops_of(handle.read())
    return {"family": family, "input_shape": list(x.shape), "outputs": [list(a.shape) for a in flat],
            "ops": ops}


def make(out_dir: str, names: list[str]) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    catalogue_path = os.path.join(out_dir, "catalogue.json")
    catalogue = {}
    if os.path.exists(catalogue_path):
        with open(catalogue_path) as handle:
            catalogue = json.load(handle)
    for name in names:
        case_dir = os.path.join(out_dir, name)
        digest = _recipe_digest(name)
        known = catalogue.get(name, {})
        if known.get("digest") == digest and (known.get("error") or
                                              os.path.exists(os.path.join(case_dir, "output0.npy"))):
            continue
        os.makedirs(case_dir, exist_ok=True)
        for stale in os.listdir(case_dir):
            os.remove(os.path.join(case_dir, stale))
        started = time.perf_counter()
        try:
            entry = (build_symbol if name in SYMBOL_CASES else build_gluoncv)(name, case_dir)
        except Exception as exc:
            entry = {"family": ALL_CASES[name][0], "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()[-2000:]}
        entry["digest"] = digest
        entry["seconds"] = round(time.perf_counter() - started, 2)
        catalogue[name] = entry
        with open(catalogue_path + ".tmp", "w") as handle:
            json.dump(catalogue, handle, indent=1, sort_keys=True)
        os.replace(catalogue_path + ".tmp", catalogue_path)
        print(f"{name}: {entry.get('error', 'ok')} ({entry['seconds']} s)", file=sys.stderr)
    return catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--only", help="comma-separated case names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(ALL_CASES))
        return 0
    names = args.only.split(",") if args.only else list(ALL_CASES)
    unknown = [n for n in names if n not in ALL_CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; see --list")
    os.environ.setdefault("MXNET_HOME", os.path.join(args.out_dir, ".mxnet"))
    make(args.out_dir, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
