"""The zoo at a glance: each entry's headline metrics, read from its card.

`keras-gen zoo list` prints `rows()`; README's zoo table is `markdown_table()`
verbatim (a test compares them), so no number is copied by hand.
"""

from __future__ import annotations

import math

from keras_gen.zoo import loader


def _with_error(value, error):
    """value ± error, rounded to the error's first significant digit (two when it is a 1)."""
    if not error or error <= 0:
        return f"{value:.2f}"
    digits = max(0, -math.floor(math.log10(error)))
    if f"{error:.{digits}f}".replace("0", "").replace(".", "").startswith("1"):
        digits += 1
    return f"{value:.{digits}f} ± {error:.{digits}f}"


def headline(card):
    """The one or two numbers that say how good an entry is, as short strings."""
    m = card.metrics
    out = []
    quality = m.get("sample_quality")
    if isinstance(quality, dict) and "fd" in quality:
        out.append(f"FD {quality['fd']:.1f}, score {quality['score']:.2f}, recall {quality['recall']:.2f}")
    if "test_nll_iwae_nats" in m:
        out.append(f"test NLL ≤ {_with_error(m['test_nll_iwae_nats'], m['test_nll_iwae_sem'])} nats (IWAE)")
    if "test_log_likelihood_nats" in m:
        error = m.get("test_log_likelihood_data_sem", m.get("test_log_likelihood_sem"))
        how = "AIS" if "log_z_stderr" in m else "exact"
        floor = m.get("true_density_test_log_likelihood")
        floor = "" if floor is None else f"; the true density's: {floor:.2f}"
        out.append(f"test log-likelihood {_with_error(m['test_log_likelihood_nats'], error)} nats ({how}{floor})")
    if "modes_covered_within_10_std" in m:
        out.append(f"{m['modes_covered_within_10_std']}/8 modes")
    if "modes_covered" in m and "mmd" in m:
        out.append(f"{m['modes_covered']}/8 modes, MMD {m['mmd']:.4f} (held-out floor {m['mmd_held_out_floor']:.4f})")
    if "temperatures_within_target" in m:
        n = len(m.get("per_temperature", {})) or 11
        out.append(
            f"{m['temperatures_within_target']}/{n} temperatures with E and magnetization within 1%, "
            "C and chi within 5% of exact"
        )
    if "test_accuracy" in m:
        out.append(f"test accuracy {100 * m['test_accuracy']:.2f}%")
    return out


def rows():
    """(name, family, dataset, headline) for every well-formed entry, sorted by name."""
    out = []
    for name, entry in sorted(loader.entries().items()):
        if isinstance(entry, Exception):
            continue
        out.append((name, entry.family, entry.dataset.get("name", ""), "; ".join(headline(entry))))
    return out


def markdown_table():
    lines = ["| entry | family | data | measured (from its card) |", "|---|---|---|---|"]
    lines += [f"| `{name}` | {family} | {data} | {metrics} |" for name, family, data, metrics in rows()]
    return "\n".join(lines) + "\n"
