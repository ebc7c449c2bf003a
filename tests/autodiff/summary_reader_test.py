#!/usr/bin/env python3
"""Reads gradtape's event file with python3-protobuf: an independent check of the summary writer.

Runs the C++ case summary_test/writes_the_reference_event_file (its test binary is the first
argument) with GRADTAPE_SUMMARY_OUT set, then decodes the file with message classes built at run
time from TensorBoard's public field numbers (tensorflow/core/util/event.proto and
tensorflow/core/framework/summary.proto) and checks every record's framing with its own CRC-32C.
The expected values are computed here from their definitions, not from the writer.
"""
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def build_messages():
    file_proto = descriptor_pb2.FileDescriptorProto(name="tb_event.proto", package="tb",
                                                    syntax="proto3")

    def message(name, fields):
        m = file_proto.message_type.add(name=name)
        for field_name, number, ftype, label, type_name in fields:
            f = m.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if label == F.LABEL_REPEATED and ftype == F.TYPE_DOUBLE:
                f.options.packed = True

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("HistogramProto", [
        ("min", 1, F.TYPE_DOUBLE, opt, None), ("max", 2, F.TYPE_DOUBLE, opt, None),
        ("num", 3, F.TYPE_DOUBLE, opt, None), ("sum", 4, F.TYPE_DOUBLE, opt, None),
        ("sum_squares", 5, F.TYPE_DOUBLE, opt, None),
        ("bucket_limit", 6, F.TYPE_DOUBLE, rep, None), ("bucket", 7, F.TYPE_DOUBLE, rep, None)])
    message("Value", [
        ("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None),
        ("histo", 5, F.TYPE_MESSAGE, opt, ".tb.HistogramProto")])
    message("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".tb.Value")])
    message("Event", [
        ("wall_time", 1, F.TYPE_DOUBLE, opt, None), ("step", 2, F.TYPE_INT64, opt, None),
        ("file_version", 3, F.TYPE_STRING, opt, None),
        ("summary", 5, F.TYPE_MESSAGE, opt, ".tb.Summary")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    descriptor = pool.FindMessageTypeByName("tb.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        assert length_crc == masked(crc32c(data[at:at + 8])), "length crc"
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        assert body_crc == masked(crc32c(body)), "data crc"
        yield body
        at += 12 + length + 4


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bucket_limit_of(v):
    """The upper limit of TF's default bucket holding v: the first limit above v."""
    positive = []
    x = 1e-12
    while x < 1e20:
        positive.append(x)
        x *= 1.1
    positive.append(sys.float_info.max)
    limits = [-p for p in reversed(positive)] + [0.0] + positive
    return next(limit for limit in limits if limit > v)


HISTOGRAM_VALUES = [-2.5, -1e-13, 0.0, 0.3, 0.3, 7.0, 1e21]


def check(path, started):
    Event = build_messages()
    events = [Event.FromString(r) for r in records(path)]
    assert len(events) == 4, len(events)
    assert events[0].file_version == "brain.Event:2"
    assert started - 1 <= events[0].wall_time <= time.time() + 1
    for s in range(3):
        e = events[s + 1]
        assert e.step == 10 * s, e.step
        values = {v.tag: v for v in e.summary.value}
        assert list(values) == ["loss", "eval/accuracy", "weights"], list(values)
        assert values["loss"].simple_value == 0.25 + 0.5 * s
        assert values["eval/accuracy"].simple_value == f32(s / 4.0)
        h = values["weights"].histo
        xs = [f32(v * (s + 1)) for v in HISTOGRAM_VALUES]
        assert (h.min, h.max, h.num) == (min(xs), max(xs), len(xs))
        assert math.isclose(h.sum, math.fsum(xs), rel_tol=1e-15)
        assert math.isclose(h.sum_squares, math.fsum(v * v for v in xs), rel_tol=1e-15)
        assert len(h.bucket_limit) == len(h.bucket)
        got = {}
        for limit, count in zip(h.bucket_limit, h.bucket):
            if count:
                got[limit] = got.get(limit, 0) + count
        expected = {}
        for v in xs:
            expected[bucket_limit_of(v)] = expected.get(bucket_limit_of(v), 0) + 1
        assert got == expected, (got, expected)
        assert all(a < b for a, b in zip(h.bucket_limit, h.bucket_limit[1:]))
        assert all(a or b for a, b in zip(h.bucket, h.bucket[1:])), "uncollapsed empty run"
    print(f"{path}: {len(events)} events decoded and checked")


def main():
    test_binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        started = time.time()
        env = dict(os.environ, GRADTAPE_SUMMARY_OUT=out)
        subprocess.run([test_binary, "--run_test=summary_test/writes_the_reference_event_file",
                        "--log_level=warning"], env=env, check=True)
        files = [f for f in os.listdir(out) if f.startswith("events.out.tfevents.")]
        assert len(files) == 1, files
        check(os.path.join(out, files[0]), started)


if __name__ == "__main__":
    main()
