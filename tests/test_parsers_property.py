"""Property tests: every parser a user feeds gives a valid result or one clear line, never a traceback.

hypothesis generates both arbitrary input (any text, any bytes) and near-valid input (the
right shape with one thing wrong), for the days syntax, the station normals CSV, the YAML
job file and the model parameters; the multipart upload is fuzzed against the live server
in test_web_fuzz.py. Runs are derandomized (the same examples every run) and bounded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eemt_flow.climate.station import STATION_COLUMNS, read_station_normals
from eemt_flow.errors import UserError
from eemt_flow.model.constants import DAYS_PER_YEAR
from eemt_flow.model.eemt import ModelParameters
from eemt_flow.solar.parameters import format_days, parse_days
from eemt_flow.workflow.spec import JobSpec, build_spec, load_yaml

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def assert_one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message"
    assert "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message
    return message


# -- days ------------------------------------------------------------------------------------

day_item = st.one_of(
    st.integers(-5, 400).map(str),
    st.tuples(st.integers(-5, 400), st.integers(-5, 400)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.text(alphabet="0123456789-, \t", max_size=8),
)
days_text = st.one_of(st.text(max_size=30), st.lists(day_item, max_size=6).map(",".join))


@BOUNDED
@given(text=days_text)
def test_days_syntax(text):
    try:
        days = parse_days(text)
    except ValueError as exc:
        assert_one_line(exc)
        with pytest.raises(UserError) as refused:
            build_spec({"dem": "dem.tif", "days": text})
        assert assert_one_line(refused.value).startswith("--days: ")
        return
    assert days == sorted(set(days)) and days
    assert all(1 <= d <= DAYS_PER_YEAR for d in days)
    assert parse_days(format_days(days)) == days
    assert build_spec({"dem": "dem.tif", "days": text}).days == days


@BOUNDED
@given(days=st.lists(st.integers(1, DAYS_PER_YEAR), min_size=1, max_size=40, unique=True))
def test_days_round_trip(days):
    """Every set of days survives format_days -> parse_days (how job.json and the web store them)."""
    assert parse_days(format_days(sorted(days))) == sorted(days)


# -- station normals CSV ---------------------------------------------------------------------

number_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-100, 5000).map(str),
                        st.text(max_size=6))
row = st.tuples(st.one_of(st.integers(0, 14).map(str), st.text(max_size=3)),
                number_text, number_text, number_text, number_text)


def _csv_text(header, rows, delimiter=","):
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    return "\n".join(lines) + "\n"


station_csv = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(_csv_text, st.just(STATION_COLUMNS), st.lists(row, max_size=14)).map(str.encode),
    st.builds(_csv_text, st.permutations(STATION_COLUMNS + ("extra",)), st.lists(row, max_size=3)).map(str.encode),
)


@BOUNDED
@given(content=station_csv)
def test_station_csv(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("csv") / "normals.csv"
    path.write_bytes(content)
    try:
        normals = read_station_normals(path)
    except UserError as exc:
        assert str(path) in assert_one_line(exc)
        return
    for values in (normals.tmin_c, normals.tmax_c, normals.prcp_mm, normals.vp_pa):
        assert values.shape == (12,) and np.isfinite(values).all()
    assert (normals.tmin_c <= normals.tmax_c).all() and (normals.prcp_mm >= 0).all() and (normals.vp_pa > 0).all()


def test_station_csv_valid_example_reads():
    """The positive case the generator rarely builds: the shipped example reads, 12 months."""
    normals = read_station_normals(Path(__file__).resolve().parents[1] / "examples" / "station_normals.csv")
    assert normals.tmin_c.shape == (12,)


# -- YAML job file ---------------------------------------------------------------------------

KEYS = sorted(JobSpec.model_fields) + ["tile_size", "halo", "horizon_step", "model", "step-minutes", "step_minuts"]
scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=12))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                     max_leaves=6)
job_dict = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), value, max_size=6)


def _yaml_text(d) -> str:
    return yaml.safe_dump({"dem": "dem.tif", **d})


job_file = st.one_of(st.text(max_size=200), job_dict.map(_yaml_text),
                     st.binary(max_size=100).map(lambda b: b.decode("latin-1")))


@BOUNDED
@given(text=job_file)
def test_yaml_job_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("job") / "job.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    try:
        spec = build_spec(load_yaml(path))
    except UserError as exc:
        assert_one_line(exc)
        return
    assert isinstance(spec, JobSpec)
    assert spec.days and 0 < spec.step_minutes <= 60
    ModelParameters.from_mapping(spec.model_parameters)  # a valid spec holds valid model parameters


# -- model parameters ------------------------------------------------------------------------

PARAMETER_NAMES = sorted(ModelParameters.__dataclass_fields__)
parameters = st.dictionaries(st.one_of(st.sampled_from(PARAMETER_NAMES), st.text(max_size=8)),
                             st.one_of(scalar, st.lists(scalar, max_size=2)), max_size=5)


@BOUNDED
@given(values=parameters)
def test_model_parameters(values):
    try:
        spec = build_spec({"dem": "dem.tif", "model_parameters": values})
    except UserError as exc:
        assert assert_one_line(exc).startswith("model_parameters")
        return
    params = ModelParameters.from_mapping(spec.model_parameters)
    for name, v in params.as_dict().items():
        if isinstance(v, float):
            assert np.isfinite(v), name
