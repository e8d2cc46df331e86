"""How fast sharded CSI reaches a training loop, in samples/s (issue 17, the input pipeline).

Writes a dataset of real shards (``--recipe``, default ``umi-los``, the fastest to generate:
``--samples`` float32 ``[N, 2, 32, 32]`` CSI in ``--shards`` shards) with ``write_dataset`` into a
temporary folder, then times, on the same arrays, batches of ``--batch-size`` pulled from:

* ``shard_dataset``, in drop order and shuffled across shards (memory-mapped, checked shards);
* ``tf.data.Dataset.from_tensor_slices`` on the split in memory, in order and through a
  ``shuffle(10,000)`` buffer (each batch mapped to ``(x, x)`` and prefetched, like ``shard_dataset``);
* the per-sample Python generator that ``shard_dataset`` used before issue 17 (``from_generator``
  over the rows of ``read_split``, then a 10,000-sample shuffle buffer), for comparison
  (``--no-generator`` skips it: it measured 4,000-5,500 samples/s);
* ``load_shards``, reading the whole split into memory: the loader of the JAX path of
  ``tools/train_portable.py``.

Each tf.data path runs one untimed epoch (tracing, page cache), then ``--epochs`` timed ones (the
generator: one); ``load_shards`` is timed over ``--epochs`` calls. The table gives samples/s, the
ratio to ``from_tensor_slices`` in order, and the CPU time per sample (this process, all threads).
Other work on the machine slows every row; compare rows of one run only (it prints the load
average), and read the CPU column when the machine is busy.

Run ``python benchmarks/input_pipeline.py`` (about two minutes on 2 cores, most of it generating the
data; ``--samples``, ``--shards``, ``--batch-size``, ``--epochs``, ``--recipe``, ``--workers``,
``--no-generator``).
"""

import argparse
import os
import tempfile
import time

import tensorflow as tf

from mimokd.channels.shards import load_shards, read_split, shard_dataset, write_dataset

SHUFFLE_BUFFER = 10_000


def _samples_per_second(dataset, epochs, warmup=True):
    """``(samples/s, CPU µs/sample)`` of ``epochs`` passes over a dataset of ``(x, y)`` batches.

    ``warmup``: one untimed pass first (else one untimed batch). The CPU time is this process's, all
    threads: under load it shows what a path costs when the wall-clock rate does not.
    """
    for _ in dataset.take(-1 if warmup else 1):
        pass
    samples, started, cpu = 0, time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for x, _ in dataset:
            samples += x.shape[0]
    return samples / (time.perf_counter() - started), 1e6 * (time.process_time() - cpu) / samples


def _in_memory(csi, batch_size, shuffle):
    """``from_tensor_slices`` on the split in memory: ``(float32 [batch, 2, 32, 32],) * 2`` batches."""
    dataset = tf.data.Dataset.from_tensor_slices(csi)
    if shuffle:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=0, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def _per_sample_generator(directory, batch_size):
    """The path before issue 17: a Python generator of single samples ``float32 [2, 32, 32]``."""
    rows = tf.data.Dataset.from_generator(lambda: (row for part in read_split(directory) for row in part),
                                          output_signature=tf.TensorSpec((2, 32, 32), tf.float32))
    rows = rows.shuffle(SHUFFLE_BUFFER, seed=0, reshuffle_each_iteration=True)
    return rows.batch(batch_size).map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--recipe", default="umi-los")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count()))
    parser.add_argument("--no-generator", action="store_true", help="skip the per-sample generator path")
    args = parser.parse_args(argv)

    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (busy if above the core count)")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_dataset(args.recipe, tmp, samples=args.samples, shards=args.shards, workers=args.workers,
                      progress=False)
        print(f"wrote {args.samples} {args.recipe} samples in {args.shards} shards "
              f"in {time.perf_counter() - started:.0f} s")

        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.epochs):
            csi = load_shards(tmp)
        total = args.samples * args.epochs
        rows = [("load_shards (tools/train_portable.py, JAX)", (total / (time.perf_counter() - started),
                                                                1e6 * (time.process_time() - cpu) / total))]
        b = args.batch_size
        rows += [
            ("from_tensor_slices, in order", _samples_per_second(_in_memory(csi, b, False), args.epochs)),
            ("from_tensor_slices, shuffle(10,000)", _samples_per_second(_in_memory(csi, b, True), args.epochs)),
            ("shard_dataset, in order", _samples_per_second(shard_dataset(tmp, batch_size=b), args.epochs)),
            ("shard_dataset, shuffled across shards",
             _samples_per_second(shard_dataset(tmp, batch_size=b, shuffle=True), args.epochs)),
        ]
        if not args.no_generator:
            rows.append(("per-sample generator (before issue 17)",
                         _samples_per_second(_per_sample_generator(tmp, b), 1, warmup=False)))
    reference = rows[1][1][0]
    print(f"\n{'path':44s} {'samples/s':>10s} {'vs in order':>12s} {'CPU us/sample':>14s}")
    for name, (rate, cpu) in rows:
        print(f"{name:44s} {rate:10,.0f} {rate / reference:11.2f}x {cpu:14.1f}")


if __name__ == "__main__":
    main()
