"""scikit-learn autologging against the real servers: what one ``fit`` records (params, training
metrics, tags, the model, the child runs of a parameter search), the options, and that patching
is undone and never changes what ``fit`` does."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modelreg
import modelreg.pyfunc
import modelreg.sklearn
from modelreg.entities import Run
from tests.servers import Services

REGRESSOR_METRICS = {
    "training_mean_squared_error",
    "training_root_mean_squared_error",
    "training_mean_absolute_error",
    "training_r2_score",
    "training_score",
}
CLASSIFIER_METRICS = {
    "training_accuracy_score",
    "training_precision_score",
    "training_recall_score",
    "training_f1_score",
    "training_log_loss",
    "training_roc_auc",
    "training_score",
}
WARNING_PREFIX = "Encountered unexpected error during sklearn autologging"


@pytest.fixture
def experiment(fluent_targets: Services, unique: str) -> Iterator[str]:
    """A fresh active experiment; autologging is switched off after the test."""
    experiment_id = modelreg.set_experiment(f"autolog-{unique}").experiment_id
    yield experiment_id
    modelreg.sklearn.autolog(disable=True)


def runs_of(experiment_id: str) -> list[Run]:
    return modelreg.search_runs([experiment_id], output_format="list")


def only_run(experiment_id: str) -> Run:
    runs = runs_of(experiment_id)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def artifact_paths(run_id: str) -> set[str]:
    return {a.path for a in modelreg.Client().list_artifacts(run_id)}


def expected_params(params: dict[str, object]) -> dict[str, str]:
    return {k: str(v) for k, v in params.items()}


def test_linear_regression_records_params_metrics_tags_and_model(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    modelreg.autolog()
    model = LinearRegression()
    assert model.fit(X, y) is model
    assert modelreg.active_run() is None  # the run autologging started is over

    run = only_run(experiment)
    assert run.info.status == "FINISHED"
    assert run.data.params == expected_params(model.get_params(deep=True))
    assert set(run.data.metrics) == REGRESSOR_METRICS
    predicted = model.predict(X)
    mse = skm.mean_squared_error(y, predicted)
    assert run.data.metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert run.data.metrics["training_root_mean_squared_error"] == pytest.approx(mse**0.5)
    assert run.data.metrics["training_mean_absolute_error"] == pytest.approx(
        skm.mean_absolute_error(y, predicted)
    )
    assert run.data.metrics["training_r2_score"] == pytest.approx(model.score(X, y))
    assert run.data.metrics["training_score"] == pytest.approx(model.score(X, y))
    assert {
        "estimator_name": "LinearRegression",
        "estimator_class": "sklearn.linear_model._base.LinearRegression",
        "mlflow.autologging": "sklearn",
    }.items() <= run.data.tags.items()
    assert {"model", "estimator.html"} <= artifact_paths(run.info.run_id)

    loaded = modelreg.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), predicted)
    signature = loaded.metadata.signature
    assert signature is not None and signature.input_names == list(X.columns)
    assert loaded.metadata.input_example is None  # log_input_examples is off by default


def test_logistic_regression_records_classifier_metrics_and_registers(experiment: str, unique: str) -> None:
    X, y = load_iris(return_X_y=True)
    modelreg.sklearn.autolog(registered_model_name=f"iris-{unique}", log_input_examples=True)
    model = LogisticRegression(max_iter=500).fit(X, y)

    run = only_run(experiment)
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    predicted = model.predict(X)
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert run.data.metrics["training_f1_score"] == pytest.approx(
        skm.f1_score(y, predicted, average="weighted")
    )
    assert run.data.metrics["training_log_loss"] == pytest.approx(skm.log_loss(y, model.predict_proba(X)))
    assert run.data.tags["estimator_name"] == "LogisticRegression"

    version = modelreg.Client().get_model_version(f"iris-{unique}", 1)
    assert version.run_id == run.info.run_id
    loaded = modelreg.pyfunc.load_model(f"models:/iris-{unique}/1")
    np.testing.assert_array_equal(loaded.predict(X), predicted)
    assert loaded.metadata.input_example is not None


def test_pipeline_logs_one_run_with_deep_params(experiment: str) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    modelreg.autolog()
    pipeline = Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)

    run = only_run(experiment)  # the steps' fits inside the pipeline make no runs of their own
    assert run.data.params == expected_params(pipeline.get_params(deep=True))
    assert run.data.params["clf__C"] == "1.0" and "scaler__with_mean" in run.data.params
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    loaded = modelreg.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))


def test_grid_search_logs_a_parent_and_the_best_candidates_as_child_runs(experiment: str) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    modelreg.autolog()
    grid = {"clf__C": [0.01, 0.1, 1.0, 10.0], "clf__solver": ["lbfgs", "saga"]}
    search = GridSearchCV(
        Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]), grid, cv=3
    )
    search.fit(X, y)

    runs = runs_of(experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 1 + 5  # max_tuning_runs=5 of 8 candidates; no run per CV fit
    parent = parents[0]
    assert parent.data.params == {
        **expected_params(search.get_params(deep=False)),
        **{f"best_{k}": str(v) for k, v in search.best_params_.items()},
    }
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert set(parent.data.metrics) == CLASSIFIER_METRICS | {"best_cv_score"}
    assert parent.data.tags["estimator_name"] == "GridSearchCV"
    assert {"model", "best_estimator", "cv_results.csv", "estimator.html"} <= artifact_paths(
        parent.info.run_id
    )

    children = modelreg.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert len(children) == 5
    results = pd.DataFrame(search.cv_results_)
    best = results.nsmallest(5, "rank_test_score")
    assert sorted((r.data.params["clf__C"], r.data.params["clf__solver"]) for r in children) == sorted(
        (str(p["clf__C"]), p["clf__solver"]) for p in best["params"]
    )
    seed_params = expected_params(search.estimator.get_params(deep=True))
    for child in children:
        assert child.info.parent_run_id == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["estimator_name"] == "Pipeline"
        assert child.data.tags["mlflow.autologging"] == "sklearn"
        assert seed_params.keys() == child.data.params.keys()
        assert set(child.data.metrics) == {
            "mean_fit_time",
            "std_fit_time",
            "mean_score_time",
            "std_score_time",
            "mean_test_score",
            "std_test_score",
            "rank_test_score",
        }
        row = results[
            results["params"].map(
                lambda p, c=child: (
                    str(p["clf__C"]) == c.data.params["clf__C"]
                    and p["clf__solver"] == c.data.params["clf__solver"]
                )
            )
        ].iloc[0]
        assert child.data.metrics["mean_test_score"] == pytest.approx(row["mean_test_score"])

    model = modelreg.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
    np.testing.assert_array_equal(model.predict(X), search.predict(X))
    best_model = modelreg.sklearn.load_model(f"runs:/{parent.info.run_id}/best_estimator")
    np.testing.assert_array_equal(best_model.predict(X), search.best_estimator_.predict(X))


def test_max_tuning_runs_none_logs_every_candidate_and_worker_threads_log_nothing(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    modelreg.sklearn.autolog(max_tuning_runs=None, log_models=False)
    search = RandomizedSearchCV(
        Ridge(), {"alpha": [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]}, n_iter=7, cv=2, random_state=0, n_jobs=2
    )
    with joblib.parallel_backend("threading"):  # candidates are fitted in threads without a run
        search.fit(X, y)
    assert len(runs_of(experiment)) == 1 + 7


def test_keyword_arguments_and_sample_weights_are_used_for_the_metrics(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    weights = np.linspace(0.1, 2.0, len(y))
    modelreg.sklearn.autolog(log_models=False)
    model = LinearRegression().fit(X=X, y=y, sample_weight=weights)
    metrics = only_run(experiment).data.metrics
    weighted_mse = skm.mean_squared_error(y, model.predict(X), sample_weight=weights)
    assert metrics["training_mean_squared_error"] == pytest.approx(weighted_mse)
    assert metrics["training_score"] == pytest.approx(model.score(X, y, sample_weight=weights))


def test_log_models_false_logs_no_model(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    modelreg.sklearn.autolog(log_models=False)
    LinearRegression().fit(X, y)
    run = only_run(experiment)
    assert set(run.data.metrics) == REGRESSOR_METRICS
    assert "model" not in artifact_paths(run.info.run_id)


def test_fit_inside_an_active_run_logs_into_it_and_leaves_it_active(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    modelreg.autolog()
    with modelreg.start_run(run_name="mine") as run:
        modelreg.log_param("note", "user param")
        LinearRegression().fit(X, y)
        assert modelreg.active_run() is run
    logged = only_run(experiment)
    assert logged.info.run_id == run.info.run_id
    assert logged.data.params["note"] == "user param" and logged.data.params["fit_intercept"] == "True"
    assert set(logged.data.metrics) == REGRESSOR_METRICS
    assert "mlflow.autologging" not in logged.data.tags  # autologging did not start this run


def test_exclusive_leaves_user_runs_alone(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    modelreg.sklearn.autolog(exclusive=True, log_models=False)
    with modelreg.start_run() as run:
        LinearRegression().fit(X, y)
    assert modelreg.get_run(run.info.run_id).data.params == {}
    LinearRegression().fit(X, y)  # no active run: autologging starts its own
    assert len(runs_of(experiment)) == 2


def test_disable_restores_the_original_methods(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    fit, ridge_fit = LinearRegression.fit, vars(Ridge)["fit"]
    fit_predict = vars(Pipeline)["fit_predict"].fn  # an available_if descriptor's function
    modelreg.autolog()
    assert LinearRegression.fit is not fit and vars(Pipeline)["fit_predict"].fn is not fit_predict
    modelreg.autolog(disable=True)
    assert LinearRegression.fit is fit and vars(Ridge)["fit"] is ridge_fit
    assert vars(Pipeline)["fit_predict"].fn is fit_predict
    assert not hasattr(Pipeline([("r", Ridge())]), "fit_predict")  # still guarded by available_if
    LinearRegression().fit(X, y)
    assert runs_of(experiment) == []


def test_a_logging_failure_warns_and_silent_hides_it(
    experiment: str, caplog: pytest.LogCaptureFixture
) -> None:
    X, y = load_diabetes(return_X_y=True)
    for silent in (False, True):
        caplog.clear()
        modelreg.sklearn.autolog(silent=silent, log_models=False)
        with caplog.at_level(logging.INFO, logger="modelreg"), modelreg.start_run():
            modelreg.log_param("fit_intercept", "not a bool")  # autologging's value will conflict
            model = LinearRegression().fit(X, y)
        assert hasattr(model, "coef_")  # the fit went through
        warnings = [
            r.getMessage() for r in caplog.records if r.name == "modelreg" and r.levelno >= logging.WARNING
        ]
        if silent:
            assert warnings == []
        else:
            assert any(w.startswith(WARNING_PREFIX) and "fit_intercept" in w for w in warnings), warnings


def test_an_exception_in_fit_propagates_unchanged(experiment: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    X[0, 0] = np.nan
    with pytest.raises(ValueError) as plain:
        LinearRegression().fit(X, y)
    modelreg.autolog()
    with pytest.raises(ValueError) as logged:
        LinearRegression().fit(X, y)
    assert type(logged.value) is type(plain.value) and str(logged.value) == str(plain.value)
    assert modelreg.active_run() is None
    assert only_run(experiment).info.status == "FAILED"

    with modelreg.start_run() as run:  # inside the caller's run: the run is theirs to end
        with pytest.raises(ValueError):
            LinearRegression().fit(X, y)
        assert modelreg.active_run() is run
