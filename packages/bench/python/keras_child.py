"""One Keras measurement for descent's bench, in a process of its own.

    python keras_child.py < task.json > reply.json

The task (JSON on stdin) names the data files, the model as a list of layers, a seed, the number
of threads and what to do: 'epoch' (time one epoch of model.fit, then inference on the test set),
'accuracy' (train several epochs, then test accuracy) or 'steps' (one train_on_batch per batch of
the first images in order, from Keras's own initial weights, returning every loss and the
weights before and after). "onednn": false runs TensorFlow's Eigen kernels instead of oneDNN's.
The reply (JSON on stdout) is {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
Everything TensorFlow prints goes to stderr.
"""
import base64
import gzip
import json
import math
import os
import resource
import sys
import time
import traceback

# The reply owns stdout; TensorFlow's C++ and Python messages go to stderr, even ones that
# write straight to file descriptor 1.
REPLY = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CLIP_LOW = np.float32(1e-7)
CLIP_HIGH = np.float32(1 - 1e-7)


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy array of unsigned bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    count = int(np.prod(shape))
    values = np.frombuffer(data, dtype=np.uint8, count=count, offset=4 + 4 * dims)
    return values.reshape(shape)


def load(files, input_shape):
    """Images divided by 255 as float32 (the floats the bench gives tfjs, and descent wherever it takes floats), labels as int32."""
    def images(path):
        raw = read_idx(path)
        return (raw.astype(np.float32) / np.float32(255)).reshape([raw.shape[0], *input_shape])

    def labels(path):
        return read_idx(path).astype(np.int32)

    return (images(files["trainImages"]), labels(files["trainLabels"]),
            images(files["testImages"]), labels(files["testLabels"]))


def build_layer(keras, spec):
    kind = spec["type"]
    if kind == "flatten":
        return keras.layers.Flatten()
    if kind == "dense":
        return keras.layers.Dense(spec["units"], activation=spec.get("activation", "linear"))
    if kind == "dropout":
        return keras.layers.Dropout(spec["rate"])
    if kind == "conv2d":
        return keras.layers.Conv2D(spec["filters"], spec["kernelSize"], strides=spec.get("strides", 1),
                                   padding=spec.get("padding", "valid"), activation=spec.get("activation", "linear"))
    if kind == "maxpool":
        return keras.layers.MaxPooling2D(spec["poolSize"], strides=spec.get("strides"), padding=spec.get("padding", "valid"))
    raise ValueError(f"unknown layer type {kind!r}")


def build_model(keras, task, metrics):
    model_spec = task["model"]
    keras.utils.set_random_seed(task["seed"])
    model = keras.Sequential([keras.Input(shape=model_spec["inputShape"])]
                             + [build_layer(keras, spec) for spec in model_spec["layers"]])
    adam = task["adam"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=adam["learningRate"], beta_1=adam["beta1"],
                                        beta_2=adam["beta2"], epsilon=adam["epsilon"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"] if metrics else [],
    )
    return model


def float32_base64(array):
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def weights_of(model):
    return [{"name": w.path, "shape": list(w.shape), "values": float32_base64(w.numpy())} for w in model.weights]


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def accuracy_and_clipped(probabilities, labels):
    label_probabilities = probabilities[np.arange(len(labels)), labels]
    clipped = np.count_nonzero((label_probabilities < CLIP_LOW) | (label_probabilities > CLIP_HIGH))
    return float(np.mean(np.argmax(probabilities, axis=1) == labels)), clipped / len(labels)


def predict_in_batches(model, x, bench_model):
    """model.predict_on_batch over slices of the model's inference batch (all of x when it has none)."""
    size = bench_model.get("inferenceBatch") or len(x)
    return np.concatenate([model.predict_on_batch(x[start:start + size]) for start in range(0, len(x), size)])


def epoch(keras, task, backend):
    x, y, x_test, y_test = load(task["files"], task["model"]["inputShape"])
    model = build_model(keras, task, metrics=True)
    started = time.perf_counter()
    history = model.fit(x, y, epochs=1, batch_size=task["batchSize"], shuffle=True, verbose=0)
    seconds = time.perf_counter() - started
    training_peak = peak_rss_bytes()
    # The whole test set as one batch (or in the model's inference batches), outputs back in numpy,
    # after one warm-up.
    probabilities = predict_in_batches(model, x_test, task["model"])
    times_ms = []
    for _ in range(task["inferenceRuns"]):
        started = time.perf_counter()
        predict_in_batches(model, x_test, task["model"])
        times_ms.append((time.perf_counter() - started) * 1000)
    accuracy, _ = accuracy_and_clipped(probabilities, y_test)
    return {"available": True, "backend": backend, "seconds": seconds, "trainLoss": float(history.history["loss"][0]),
            "testAccuracy": accuracy, "inferenceMs": times_ms, "peakRssBytes": training_peak,
            "peakRssAfterInferenceBytes": peak_rss_bytes()}


def accuracy(keras, task, backend):
    x, y, x_test, y_test = load(task["files"], task["model"]["inputShape"])
    model = build_model(keras, task, metrics=False)
    # validation_split as Keras's fit takes it: the last images, before any shuffling.
    split = task.get("validationSplit") or 0
    kept = int(math.floor(len(x) * (1.0 - split)))
    x, y, x_val, y_val = x[:kept], y[:kept], x[kept:], y[kept:]
    patience = task.get("earlyStoppingPatience")
    # After keras.utils.set_random_seed, fit(shuffle=True) repeats one order in every epoch (Keras 3 on
    # TensorFlow). Training as an unseeded Keras run does, on a new order each epoch, takes a shuffle of
    # our own: a seeded permutation per epoch, one epoch per fit call. Early stopping is therefore
    # Keras 3's EarlyStopping(monitor="val_loss", restore_best_weights=True) written out over the calls.
    rng = np.random.default_rng(task["seed"])
    seconds = 0.0
    epoch_accuracies, val_losses = [], []
    best, best_epoch, best_weights, wait = math.inf, 0, None, 0
    for epoch in range(task["epochs"]):
        order = rng.permutation(len(x))
        started = time.perf_counter()
        model.fit(x[order], y[order], epochs=1, batch_size=task["batchSize"], shuffle=False, verbose=0)
        if split:
            val_loss = model.evaluate(x_val, y_val, batch_size=task["batchSize"], verbose=0)
            val_losses.append(float(val_loss[0] if isinstance(val_loss, (list, tuple)) else val_loss))
        seconds += time.perf_counter() - started
        # Test accuracy after every epoch (not timed), as descent takes it.
        epoch_accuracies.append(accuracy_and_clipped(predict_in_batches(model, x_test, task["model"]), y_test)[0])
        if patience is None:
            continue
        if best_weights is None:
            best_epoch, best_weights = epoch, model.get_weights()
        wait += 1
        if val_losses[-1] < best:
            best, best_epoch, best_weights, wait = val_losses[-1], epoch, model.get_weights(), 0
        elif wait >= patience and epoch > 0:
            break
    if patience is not None:
        model.set_weights(best_weights)
    test_accuracy, clipped = accuracy_and_clipped(predict_in_batches(model, x_test, task["model"]), y_test)
    result = {"backend": backend, "testAccuracy": test_accuracy, "epochAccuracies": epoch_accuracies,
              "clippedFraction": clipped, "seconds": seconds}
    if split:
        result["valLosses"] = val_losses
    if patience is not None:
        result["restoredEpoch"] = best_epoch
    return result


def steps(keras, task, backend):
    x, y, _, _ = load(task["files"], task["model"]["inputShape"])
    batch, count = task["batchSize"], task["steps"]
    if count * batch > len(x):
        raise ValueError(f"{count} steps need {count * batch} training images; the dataset has {len(x)}")
    model = build_model(keras, task, metrics=False)
    initial = weights_of(model)
    losses = [float(model.train_on_batch(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]))
              for i in range(count)]
    return {"backend": backend, "initial": initial, "losses": losses, "final": weights_of(model)}


TASKS = {"epoch": epoch, "accuracy": accuracy, "steps": steps}


def main():
    task = json.load(sys.stdin)
    if task.get("onednn") is False:
        # TensorFlow's Eigen kernels instead of oneDNN's: read once, when TensorFlow loads.
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    import tensorflow as tf
    threads = task.get("threads")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    backend = f"TF {tf.__version__}, Keras {keras.__version__}" + (", oneDNN off" if task.get("onednn") is False else "")
    return TASKS[task["kind"]](keras, task, backend)


if __name__ == "__main__":
    try:
        reply = {"ok": True, "result": main()}
    except Exception as error:  # the parent reports it in one line
        reply = {"ok": False, "error": f"{type(error).__name__}: {error}".splitlines()[0], "stack": traceback.format_exc()}
    REPLY.write(json.dumps(reply))
    REPLY.flush()
    sys.exit(0 if reply["ok"] else 1)
