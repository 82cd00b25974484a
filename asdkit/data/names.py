"""DCASE Task 2 file names, 2020 to 2026.

Four families of names exist:

* 2021-2024 development and additional-training data::

      section_00_source_train_normal_0000_<attrs>.wav
      section_00_target_test_anomaly_0012_<attrs>.wav

  where ``<attrs>`` is ``param_value`` pairs joined by ``_``
  (``car_A2_spd_28V_mic_1``), the literal ``noAttribute`` (2024 machines whose
  attributes are concealed), or absent (2021).
* 2021-2024 evaluation test data, anonymised: ``section_00_0001.wav``. Domain
  and label are unknown until the ground truth is joined in.
* 2020: ``normal_id_00_00000000.wav`` and ``anomaly_id_00_00000000.wav``; the
  machine ID plays the role of the section, and there is one domain (source).
* 2025 supplemental clips (``<machine>/supplemental/``): machine-only and
  noise-only recordings, ``section_00_machine_source_0000_noAttribute.wav``,
  ``section_00_noise_source_0000_noAttribute.wav`` (the organisers' listing also
  shows ``section_00_machine_0001_.wav``). Their split is ``"supplemental"`` and
  their label the kind, ``"machine"`` or ``"noise"``: never a training normal
  or a test clip.

2026 names follow the 2021-2024 pattern (the noise scene is one more
attribute, ``..._mic_1_noise_1.wav``).

:func:`parse_filename` turns a name into a :class:`ClipName`;
:func:`format_filename` does the reverse for the 2021-2024 pattern.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from asdkit.errors import FileNameError

__all__ = ["ClipName", "parse_filename", "format_filename", "parse_attributes", "NO_ATTRIBUTE", "RAW_ATTRIBUTE",
           "SUPPLEMENTAL_LABELS"]

NO_ATTRIBUTE = "noAttribute"
#: The one key under which a free-form attribute tail that is not ``param_value`` pairs is kept whole.
RAW_ATTRIBUTE = "raw"

_MODERN = re.compile(
    r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_"
    r"(?P<label>normal|anomaly)_(?P<index>\d{4})(?:_(?P<attrs>.+))?\.wav$"
)
_ANONYMOUS = re.compile(r"^section_(?P<section>\d{2})_(?P<index>\d{4})\.wav$")
_Y2020 = re.compile(r"^(?P<label>normal|anomaly)_id_(?P<section>\d{2})_(?P<index>\d{8})\.wav$")
_SUPPLEMENTAL = re.compile(
    r"^section_(?P<section>\d{2})_(?P<kind>machine|noise)(?:_(?P<domain>source|target))?_(?P<index>\d{4})"
    r"(?:_(?P<attrs>.*))?\.wav$"
)
#: Labels of supplemental clips (their split is ``"supplemental"``).
SUPPLEMENTAL_LABELS = ("machine", "noise")


@dataclass(frozen=True)
class ClipName:
    """What a DCASE file name says about its clip.

    Attributes
    ----------
    file : str
        The base name, e.g. ``"section_00_source_train_normal_0000_vel_6.wav"``.
    section : str
        Two-digit section (or 2020 machine ID), e.g. ``"00"``.
    domain : str or None
        ``"source"``, ``"target"``, or None where the name does not say (anonymised
        evaluation names).
    split : str or None
        ``"train"``, ``"test"`` or ``"supplemental"``; None for anonymised and 2020
        names, whose split is given by the folder.
    label : str or None
        ``"normal"``, ``"anomaly"``, None (anonymised names), or for supplemental
        clips their kind, ``"machine"`` or ``"noise"``.
    index : int
        The running number in the name.
    attributes : dict of str to str
        ``param -> value`` pairs; empty for ``noAttribute`` and for names without
        attributes. A tail that does not pair up (real DCASE 2021 development
        names such as ``..._0050_strength_1_ambient.wav``) is kept whole as
        ``{"raw": "strength_1_ambient"}`` (:data:`RAW_ATTRIBUTE`).
    has_attributes : bool or None
        False for ``noAttribute``, True where pairs are present, None where the
        naming scheme has no attribute field (2020, 2021, anonymised).
    pattern : str
        ``"dcase2021+"``, ``"anonymous"``, ``"dcase2020"`` or ``"supplemental"``.
    """

    file: str
    section: str
    domain: str | None
    split: str | None
    label: str | None
    index: int
    attributes: dict = field(default_factory=dict)
    has_attributes: bool | None = None
    pattern: str = "dcase2021+"


def parse_attributes(text: str, *, file: str = "") -> dict[str, str]:
    """Parse ``param_value`` pairs joined by ``_`` into a dict.

    Parameters
    ----------
    text : str
        The attribute part of a file name, e.g. ``"car_A2_spd_28V_mic_1"``.
    file : str, optional
        The file the text comes from, named in the error message.

    Raises
    ------
    FileNameError
        If the tokens do not pair up (an odd count or an empty token): such
        names are reported, never guessed at.
    """
    tokens = text.split("_")
    if len(tokens) % 2 or any(t == "" for t in tokens):
        raise FileNameError(
            f"{file or text!r}: the attribute part {text!r} is not a list of "
            "'param_value' pairs joined by '_'. Rename the file, or scan the root with "
            "strict=False to list such files instead of stopping."
        )
    return dict(zip(tokens[0::2], tokens[1::2]))


def parse_filename(name: str | Path) -> ClipName:
    """Parse a DCASE Task 2 (2020-2026) clip file name.

    Parameters
    ----------
    name : str or path-like
        A file name or path; only the base name is read.

    Returns
    -------
    ClipName

    Raises
    ------
    FileNameError
        If the name follows none of the DCASE patterns. An attribute tail that
        is not ``param_value`` pairs does not raise: it is kept whole (see
        :attr:`ClipName.attributes`).

    Examples
    --------
    >>> c = parse_filename("section_00_target_test_anomaly_0003_vel_8_loc_A.wav")
    >>> c.domain, c.label, c.attributes
    ('target', 'anomaly', {'vel': '8', 'loc': 'A'})
    >>> parse_filename("section_00_0001.wav").domain is None
    True
    """
    base = Path(name).name
    m = _MODERN.match(base)
    if m:
        attrs_text = m.group("attrs")
        if attrs_text is None:
            attrs, has = {}, None
        elif attrs_text == NO_ATTRIBUTE:
            attrs, has = {}, False
        else:
            try:
                attrs = parse_attributes(attrs_text, file=base)
            except FileNameError:                    # a free-form tail (DCASE 2021): kept, never guessed at
                attrs = {RAW_ATTRIBUTE: attrs_text}
            has = True
        return ClipName(
            file=base,
            section=m.group("section"),
            domain=m.group("domain"),
            split=m.group("split"),
            label=m.group("label"),
            index=int(m.group("index")),
            attributes=attrs,
            has_attributes=has,
            pattern="dcase2021+",
        )
    m = _ANONYMOUS.match(base)
    if m:
        return ClipName(file=base, section=m.group("section"), domain=None, split=None,
                        label=None, index=int(m.group("index")), pattern="anonymous")
    m = _Y2020.match(base)
    if m:
        return ClipName(file=base, section=m.group("section"), domain="source", split=None,
                        label=m.group("label"), index=int(m.group("index")), pattern="dcase2020")
    m = _SUPPLEMENTAL.match(base)
    if m:
        attrs_text = m.group("attrs") or ""
        attrs = {} if attrs_text in ("", NO_ATTRIBUTE) else {RAW_ATTRIBUTE: attrs_text}
        return ClipName(file=base, section=m.group("section"), domain=m.group("domain"), split="supplemental",
                        label=m.group("kind"), index=int(m.group("index")), attributes=attrs,
                        has_attributes=bool(attrs) if attrs_text else None, pattern="supplemental")
    raise FileNameError(
        f"{base!r} follows none of the DCASE Task 2 name patterns "
        "('section_SS_{source|target}_{train|test}_{normal|anomaly}_NNNN[_attrs].wav', "
        "'section_SS_NNNN.wav', '{normal|anomaly}_id_SS_NNNNNNNN.wav' or, in supplemental/, "
        "'section_SS_{machine|noise}_[source_]NNNN[_attrs].wav'). Rename it, move it out "
        "of the dataset folder, or scan with strict=False to skip and list such files."
    )


def format_filename(*, section: int | str, domain: str, split: str, label: str, index: int,
                    attributes: dict | None = None) -> str:
    """Build a 2021-2024 style file name; the inverse of :func:`parse_filename`.

    ``attributes=None`` or ``{}`` gives ``noAttribute`` (the 2024 convention for
    concealed attributes).

    Examples
    --------
    >>> format_filename(section=0, domain="source", split="train", label="normal", index=7,
    ...                 attributes={"spd": "28V", "mic": "1"})
    'section_00_source_train_normal_0007_spd_28V_mic_1.wav'
    """
    if domain not in ("source", "target"):
        raise FileNameError(f"domain must be 'source' or 'target', got {domain!r}")
    if split not in ("train", "test"):
        raise FileNameError(f"split must be 'train' or 'test', got {split!r}")
    if label not in ("normal", "anomaly"):
        raise FileNameError(f"label must be 'normal' or 'anomaly', got {label!r}")
    for k, v in (attributes or {}).items():
        if "_" in str(k) or "_" in str(v) or not str(k) or not str(v):
            raise FileNameError(f"attribute {k!r}={v!r}: names and values must be non-empty and free of '_'")
    attrs = "_".join(f"{k}_{v}" for k, v in attributes.items()) if attributes else NO_ATTRIBUTE
    return f"section_{int(section):02d}_{domain}_{split}_{label}_{int(index):04d}_{attrs}.wav"
