"""What is inside an exported ``.tflite``, and does it run where phones run it.

The audit reads the flatbuffer with ``zoo.weights.tflite`` (op list, tensor
names, which carry the flax layer path) and asks the LiteRT interpreter how
its default XNNPACK delegate partitioned the graph:

* foreign ops: Flex (TensorFlow kernels, ``FlexConv2D``...) and custom ops;
  a phone's plain TFLite runtime has neither;
* depthwise convolutions must be ``DEPTHWISE_CONV_2D`` (not grouped
  ``CONV_2D`` or k*k MUL/ADD);
* BatchNorm folded: no op output named after a BatchNorm layer that is not a
  convolution's fused output;
* no ``TRANSPOSE`` / ``BROADCAST_TO`` (signs of a layout or shape problem);
* delegation: the number of XNNPACK partitions and the ops left outside them.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Union

from conversions.tflite import layer_of
from zoo.weights.tflite import read_tflite

STRAY_OPS = ("TRANSPOSE", "BROADCAST_TO")
# Ops that may carry a BatchNorm's name once it is folded into them.
_FOLD_TARGETS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


@dataclasses.dataclass
class AuditReport:
    """What ``audit_tflite`` found in one ``.tflite`` file. Layers are the
    flax paths the converter kept in tensor names (see
    ``conversions.tflite.layer_of``).

    Attributes:
        path: the audited file.
        ops: op type -> count, over every subgraph.
        foreign_ops: ``(op, layer)`` of each Flex or custom op, which a
            phone's builtin-only TFLite runtime cannot run.
        stray_ops: ``(op, layer)`` of each ``TRANSPOSE`` or ``BROADCAST_TO``.
        unfolded_batchnorm: layers whose BatchNorm is computed at run time
            instead of folded into a convolution, sorted, each once.
        grouped_convs: layers with a grouped ``CONV_2D`` (a depthwise
            convolution not lowered to ``DEPTHWISE_CONV_2D``).
        partitions: XNNPACK delegate partitions of the main subgraph; -1
            when delegation was not checked.
        undelegated_ops: ``(op, layer)`` of each op on the way to the
            outputs that the interpreter runs outside XNNPACK.
    """

    path: str
    ops: collections.Counter
    foreign_ops: list[tuple[str, str]]  # (op, layer)
    stray_ops: list[tuple[str, str]]
    unfolded_batchnorm: list[str]  # layers
    grouped_convs: list[str]  # CONV_2D whose filter is (C_out, k, k, 1) with C_out > 1
    partitions: int = -1  # XNNPACK delegate partitions; -1 = not checked
    undelegated_ops: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def describe_foreign(self) -> str:
        """An error message about the foreign ops.

        Returns:
            One paragraph: how many ops fall outside TFLite's builtin set,
            the first 10 with their layers, and what to do about them.
        """
        items = "; ".join(f"{op} at {layer}" for op, layer in self.foreign_ops[:10])
        return (f"{len(self.foreign_ops)} op(s) outside TFLite's builtin set ({items}). "
                "Phones' TFLite runtimes cannot run them: rewrite the layer with ops that "
                "lower to builtins (convolutions, elementwise math, reductions)")

    def summary(self) -> str:
        """The report as a few lines of text for a terminal.

        Returns:
            The op counts, most common first; the XNNPACK partitions when
            checked; then, for each non-empty finding, up to 6 of its items.
        """
        ops = ", ".join(f"{k} {v}" for k, v in self.ops.most_common())
        lines = [f"{sum(self.ops.values())} ops: {ops}"]
        if self.partitions >= 0:
            lines.append(f"XNNPACK: {self.partitions} partition(s), "
                         f"{len(self.undelegated_ops)} op(s) outside")
        for what, items in (("foreign", self.foreign_ops), ("stray", self.stray_ops),
                            ("undelegated", self.undelegated_ops)):
            if items:
                lines.append(f"{what}: " + ", ".join(f"{op}@{layer}" for op, layer in items[:6]))
        if self.unfolded_batchnorm:
            lines.append("BatchNorm not folded: " + ", ".join(self.unfolded_batchnorm[:6]))
        if self.grouped_convs:
            lines.append("grouped CONV_2D: " + ", ".join(self.grouped_convs[:6]))
        return "\n".join(lines)


def _layer(graph, op) -> str:
    names = [graph.tensors[i].name for i in op.outputs]
    return layer_of(names[0]) if names else f"op {op.index}"


def audit_tflite(path: Union[str, Path], *, delegation: bool = True) -> AuditReport:
    """The op audit of a ``.tflite`` file. Ops of every subgraph count (a
    model with control flow, e.g. TALNet's NMS loop, keeps the loop bodies in
    subgraphs of their own); delegation is read from the main one.

    Args:
        path: the ``.tflite`` file.
        delegation: also load the file in the LiteRT interpreter (needs the
            ``litert`` extra) to count XNNPACK partitions and the ops left
            outside them; skipped when the file has foreign ops.

    Returns:
        An ``AuditReport``; ``partitions`` is -1 when delegation was not
        checked.

    Raises:
        zoo.weights.errors.TFLiteFormatError: if the file is not a
            well-formed TFLite flatbuffer.
        ImportError: if ``delegation`` needs LiteRT and it is not installed.

    Example:
        ::

            report = audit_tflite("mobilenet_v2_224_int8.tflite")
            print(report.summary())
    """
    graph = read_tflite(path, subgraph=0)
    graphs = [graph] + [read_tflite(path, subgraph=i) for i in range(1, graph.num_subgraphs)]
    ops = collections.Counter(op.opcode for g in graphs for op in g.ops)
    foreign, stray, bn, grouped = [], [], [], []
    for graph, op in ((g, op) for g in graphs for op in g.ops):
        layer = _layer(graph, op)
        if op.opcode.startswith("CUSTOM") or op.opcode.startswith("Flex") or "FLEX" in op.opcode:
            foreign.append((op.opcode, layer))
        if op.opcode in STRAY_OPS:
            stray.append((op.opcode, layer))
        out_name = graph.tensors[op.outputs[0]].name if op.outputs else ""
        last = out_name.split(";")[-1]
        # DEQUANTIZE widens a stored float16/int8 constant (the folded weights
        # carry the BN's name): not a BatchNorm computed at run time.
        if op.opcode not in _FOLD_TARGETS | {"DEQUANTIZE"} and "/bn/" in last + "/":
            bn.append(layer_of(last))
        if op.opcode == "CONV_2D":
            w = graph.tensors[op.inputs[1]].shape
            groups = ((graph.tensors[op.inputs[0]].shape or (0,))[-1] // w[-1]
                      if len(w) == 4 and w[-1] else 1)
            if groups > 1:
                grouped.append(layer)
    report = AuditReport(str(path), ops, foreign, stray, sorted(set(bn)), grouped)
    if delegation and not foreign:
        report.partitions, report.undelegated_ops = _delegation(path, graphs[0])
    return report


def _delegation(path, graph) -> tuple[int, list[tuple[str, str]]]:
    """Walk the interpreter's execution plan back from the outputs: a tensor
    produced by a DELEGATE node came out of XNNPACK; any other producer is an
    op the interpreter runs itself."""
    from conversions.runtime import litert_interpreter

    interp = litert_interpreter()(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    nodes = interp._get_ops_details()  # no public API exposes the plan
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    made_by_delegate = {int(t): n for n in delegates for t in n["outputs"]}
    made_by_op = {int(t): n for n in nodes if n["op_name"] != "DELEGATE" for t in n["outputs"]}
    todo = [int(t) for t in interp._interpreter.OutputIndices()]
    seen, outside = set(), {}
    while todo:
        t = todo.pop()
        if t in seen or t < 0:
            continue
        seen.add(t)
        node = made_by_delegate.get(t) or made_by_op.get(t)
        if node is None:
            continue  # graph input or constant
        if node["op_name"] != "DELEGATE":
            outside[node["index"]] = node
        todo.extend(int(i) for i in node["inputs"])
    undelegated = [(n["op_name"], _layer(graph, graph.ops[i]) if i < len(graph.ops) else "?")
                   for i, n in sorted(outside.items())]
    return len(delegates), undelegated
