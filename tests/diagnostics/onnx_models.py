"""Small ONNX models built with the onnx helper API, to prove the AI readers' plumbing (the platform ships no
clinical model). Their outputs are simple functions of the input, so a test can tell what the model saw."""

import onnx
from onnx import TensorProto, helper


def brightness_model(size: int = 32, *, heatmap: bool = True, channels: int = 1, logits: bool = False) -> bytes:
    """Input `image` (1, channels, size, size). Output `scores` (1, 2): the mean of the input ("bright") and one
    minus it ("dark"), so with mean 0 and std 1 they are the image's mean brightness and its complement;
    with `logits`, both scaled by 10 and shifted by -5 (not probabilities). Output `heatmap`: the first
    channel of the input itself, when asked for."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean4", "pair_shape"], ["bright"]),
        helper.make_node("Sub", ["one", "bright"], ["dark"]),
        helper.make_node("Concat", ["bright", "dark"], ["probabilities"], axis=1),
    ]
    initialisers = [
        helper.make_tensor("pair_shape", TensorProto.INT64, [2], [1, 1]),
        helper.make_tensor("one", TensorProto.FLOAT, [1, 1], [1.0]),
    ]
    if logits:
        nodes += [
            helper.make_node("Mul", ["probabilities", "ten"], ["scaled"]),
            helper.make_node("Sub", ["scaled", "five"], ["scores"]),
        ]
        initialisers += [
            helper.make_tensor("ten", TensorProto.FLOAT, [1], [10.0]),
            helper.make_tensor("five", TensorProto.FLOAT, [1], [5.0]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["probabilities"], ["scores"]))
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])]
    if heatmap:
        nodes.append(helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["heatmap"]))
        initialisers += [
            helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        ]
        outputs.append(helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, [1, 1, size, size]))
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, size, size])],
        outputs,
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="m-hospital-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
