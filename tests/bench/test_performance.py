"""The figures page: a results file written as a module writes it, merged into the page, the
other sections kept, and refused when it is not one."""
import json

import pytest

from bench import machine, performance, report


def results_file(tmp_path, section, figures, name="results.json"):
    out = tmp_path / "build" / "bench" / name
    report(section, figures, out, "a test machine")
    return out


def test_a_module_result_becomes_a_dated_section_of_the_page(tmp_path):
    out = results_file(tmp_path, "serving", {"serving_grpc_batch1_p50_ms": 1.25,
                                             "serving_grpc_batch256_rows_per_s": 107689})
    page = tmp_path / "performance.md"
    assert performance.update(page, [out]) == ["serving"]
    text = page.read_text()
    record = json.loads(out.read_text())["sections"]["serving"]
    assert f"Measured {record['measured']} on a test machine." in text
    assert "| serving_grpc_batch1_p50_ms | 1.25 |  |" in text
    assert "| serving_grpc_batch256_rows_per_s | 107,689 | ≥ 50,000 |" in text
    assert "[Serving: `ctpipe serve`](#serving-ctpipe-serve)" in text


def test_merging_replaces_only_the_sections_measured_again(tmp_path):
    page = tmp_path / "performance.md"
    performance.update(page, [results_file(tmp_path, "serving", {"a_s": 1.0}, "serving.json"),
                              results_file(tmp_path, "monitor", {"b_per_s": 10}, "monitor.json")])
    performance.update(page, [results_file(tmp_path, "monitor", {"b_per_s": 20}, "again.json")])
    data = performance.page_data(page)
    assert list(data) == ["serving", "monitor"]  # the page's order, not the merge order
    assert data["serving"]["figures"] == {"a_s": 1.0}
    assert data["monitor"]["figures"] == {"b_per_s": 20}
    assert performance.render(data) == page.read_text()  # rendering again changes nothing


def test_an_unknown_section_is_refused_and_the_page_left_alone(tmp_path):
    page = tmp_path / "performance.md"
    performance.update(page, [results_file(tmp_path, "serving", {"a_s": 1.0})])
    before = page.read_text()
    with pytest.raises(SystemExit, match="unknown section 'servng'"):
        performance.update(page, [results_file(tmp_path, "servng", {"a_s": 2.0}, "typo.json")])
    assert page.read_text() == before


def test_the_machine_line_names_cores_memory_and_load():
    line = machine()
    assert " cores, " in line and " GiB, " in line and "load average" in line


def test_the_committed_page_is_what_its_own_data_renders():
    data = performance.page_data(performance.PAGE)
    assert data and set(data) <= set(performance.SECTIONS)
    assert performance.render(data) == performance.PAGE.read_text()
