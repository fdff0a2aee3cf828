"""The register as XLSX, GeoJSON and Open311: readable, in their formats, no personal data."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl

from handlers import figures
from services import exports
from settings import Department, ExportRules, Programme, Settings
from storage.db import Database
from storage.figures import RegisterRow
from tests.conftest import (
    ADMIN,
    BOT_SCRIPT,
    MODERATOR_CHAT,
    PYTHON,
    BotStarter,
    bot_process_env,
    database_url,
)
from tests.fakegram import FakeTelegram, TgUser
from tests.reports_helpers import Seed, local

DEPARTMENTS = (Department("roads", "公路段", "Roads office", -1, ("road_hazard",)),)
LONG = "路面塌陷🚧" + "很" * 492 + "危险！"  # 500 characters, with an emoji
assert len(LONG) == 500
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")


async def seed(db: Database) -> None:
    reporter = Seed(db)
    report = await reporter.report(
        local(2026, 10, 3, 9),
        status="approved",
        decided=local(2026, 10, 3, 11),
        reward_fen=10000,
        description=LONG,
    )
    await reporter.case(report, "roads", local(2026, 10, 3, 11), 24, local(2026, 10, 4, 8))
    await reporter.report(local(2026, 10, 5, 9), "fire_risk", description="电线老化😱", place=None)
    await reporter.report(local(2026, 10, 6, 9), status="rejected", decided=local(2026, 10, 6, 10))
    await reporter.report(local(2026, 11, 1, 9))  # outside October
    async with db.transaction() as conn:  # finance-only data that must never leak
        await conn.execute(
            "INSERT INTO payees (rider_id, real_name, account, updated_at)"
            " VALUES (?, '张秘密', 'secret-account-13800000000', 0)",
            (reporter.rider_id,),
        )


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        bot_token="1:x",
        database_path=tmp_path / "test.db",
        programme=Programme(departments=DEPARTMENTS),
    )


async def october(db: Database, tmp_path: Path) -> exports.Files:
    await seed(db)
    return await exports.export(
        db,
        settings_for(tmp_path),
        local(2026, 10, 1, 0),
        local(2026, 11, 1, 0),
        local(2026, 11, 2, 8),
    )


def no_personal_data(blob: bytes) -> None:
    for secret in ("张秘密", "secret-account", "13800000000"):
        assert secret.encode() not in blob


async def test_xlsx_register(db: Database, tmp_path: Path) -> None:
    """The 台账 goes upward as it is: a title, Chinese headers, frozen and filtered, dates as
    dates, coordinates to 5 decimals, money as ¥0.00, fitted columns, landscape A4 fitted to
    the width with the headers on every page, the department's outcome; read back with a
    real XLSX reader."""
    files = await october(db, tmp_path)
    assert files.count == 3
    assert files.name("xlsx") == "register-2026-10.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(files.xlsx))
    assert book.sheetnames == ["台账", "汇总", "概况", "部门绩效"]
    sheet = book["台账"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "随手拍线索台账 · 2026-10-01至2026-10-31 · 生成于2026-11-02 08:00"
    assert rows[1][:3] == ("编号", "提交时间", "审核时间")
    assert "Reference" not in rows[2]  # Chinese headers alone unless [export] says so
    first = rows[2]
    assert first[1] == datetime(2026, 10, 3, 9, 0)
    assert first[3] == datetime(2026, 10, 3, 11, 0)
    assert first[4] == datetime(2026, 10, 4, 8, 0)
    assert first[5] == "道路隐患"
    assert first[9] == "核实有效"
    assert first[10] == "公路段"
    assert first[11].startswith("已修好")
    assert first[12] == 100
    assert first[15] == LONG
    assert rows[3][6] is None  # no place
    assert len(rows) == 5
    cells = sheet[3]
    assert cells[1].number_format == "yyyy-mm-dd hh:mm"
    assert cells[6].number_format == "0.00000"
    assert cells[12].number_format == '"¥"0.00'
    assert sheet.freeze_panes == "B3"
    assert sheet.auto_filter.ref == "A2:P5"  # the header and the three reports
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.paperSize == 9
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.page_setup.fitToWidth in (None, 1)  # one page wide (1 is the file's default)
    assert sheet.page_setup.fitToHeight == 0  # as many pages long as it takes
    assert sheet.print_title_rows == "$2:$2"
    assert 50 < sheet.column_dimensions["P"].width < 55  # the long description, capped
    assert sheet.column_dimensions["A"].width >= len("R-20261003-0001")
    formulas = [c for row in book.worksheets for line in row.iter_rows() for c in line]
    assert not any(c.data_type == "f" for c in formulas)  # values only: nothing to recompute
    totals = list(book["汇总"].iter_rows(values_only=True))
    assert ("处置单位 Department", "公路段", 1, 1, 100, 1) in totals
    assert any(row[0] == "镇街 Town/street" for row in totals)
    summary = {row[0]: row[1] for row in book["概况"].iter_rows(values_only=True)}
    assert summary["收到线索 Reports received"] == 3
    assert summary["核实有效 Verified"] == 1
    assert summary["核定奖励（元） Rewards approved (yuan)"] == 100
    unzipped = zipfile.ZipFile(io.BytesIO(files.xlsx))
    for name in unzipped.namelist():
        no_personal_data(unzipped.read(name))


async def test_english_headers_are_a_setting(db: Database, tmp_path: Path) -> None:
    await seed(db)
    settings = dataclasses.replace(
        settings_for(tmp_path),
        programme=Programme(departments=DEPARTMENTS, export=ExportRules(english_headers=True)),
    )
    files = await exports.export(
        db, settings, local(2026, 10, 1, 0), local(2026, 11, 1, 0), local(2026, 11, 2, 8)
    )
    sheet = openpyxl.load_workbook(io.BytesIO(files.xlsx))["台账"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[2][:2] == ("Reference", "Submitted")
    assert rows[3][0].startswith("R-")
    assert sheet.freeze_panes == "B4"
    assert sheet.print_title_rows == "$2:$3"


async def test_geojson(db: Database, tmp_path: Path) -> None:
    files = await october(db, tmp_path)
    no_personal_data(files.geojson)
    collection = json.loads(files.geojson)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 3
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        if geometry is not None:
            assert geometry["type"] == "Point"
            lon, lat = geometry["coordinates"]
            assert -180 <= lon <= 180
            assert -90 <= lat <= 90
    first, second, _ = collection["features"]
    assert first["geometry"]["coordinates"] == [117.2, 29.3]
    assert first["properties"]["description"] == LONG
    assert first["properties"]["reward_yuan"] == "100.00"
    assert first["properties"]["submitted"] == "2026-10-03T09:00:00+08:00"
    assert second["geometry"] is None


async def test_open311(db: Database, tmp_path: Path) -> None:
    files = await october(db, tmp_path)
    services = json.loads(files.services_json)
    assert [s["service_code"] for s in services][:2] == ["road_hazard", "traffic_accident"]
    for service in services:
        assert set(service) >= {"service_code", "service_name", "metadata", "type"}
        assert service["metadata"] is False
        assert service["type"] in ("realtime", "batch", "blackbox")
    requests = json.loads(files.requests_json)
    no_personal_data(files.requests_json)
    assert len(requests) == 3
    for request in requests:
        assert isinstance(request["service_request_id"], str)
        assert request["status"] in ("open", "closed")
        for field in ("requested_datetime", "updated_datetime", "expected_datetime"):
            assert OFFSET.match(request[field]), request[field]
        for field in ("status_notes", "service_name", "service_code", "description"):
            assert isinstance(request[field], str)
        assert "media_url" not in request
        assert request["lat"] is None or isinstance(request["lat"], float)
        assert request["long"] is None or isinstance(request["long"], float)
    fixed, waiting, rejected = requests
    assert fixed["status"] == "closed"
    assert fixed["agency_responsible"] == "公路段"
    assert fixed["description"] == LONG
    assert fixed["service_code"] == "road_hazard"
    assert fixed["status_notes"] == "核实有效；已处置；照片0张" or "已处置" in fixed["status_notes"]
    assert waiting["status"] == "open"
    assert waiting["description"] == "电线老化😱"
    assert waiting["expected_datetime"] == "2026-10-06T09:00:00+08:00"  # the 24-hour promise
    assert rejected["status"] == "closed"
    archive = zipfile.ZipFile(io.BytesIO(files.open311_zip))
    assert sorted(archive.namelist()) == ["requests.json", "services.json"]


async def test_command_line_export(db: Database, tmp_path: Path) -> None:
    await seed(db)
    env = bot_process_env(None, tmp_path, DATABASE_URL=database_url(tmp_path / "test.db"))

    async def run(*arguments: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            BOT_SCRIPT,
            "export",
            *arguments,
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, output.decode()

    window = ("--from", "2026-10-01", "--to", "2026-10-31")
    code, output = await run("--format", "open311", *window, "--out", str(tmp_path / "o311"))
    assert code == 0, output
    assert len(json.loads((tmp_path / "o311" / "requests.json").read_text("utf-8"))) == 3
    assert (tmp_path / "o311" / "services.json").exists()
    code, output = await run("--format", "geojson", *window, "--out", str(tmp_path / "r.geojson"))
    assert code == 0, output
    assert len(json.loads((tmp_path / "r.geojson").read_text("utf-8"))["features"]) == 3
    code, output = await run(
        "--format",
        "xlsx",
        "--from",
        "2026-10-05",
        "--to",
        "2026-11-01",
        "--out",
        str(tmp_path / "r.xlsx"),
    )
    assert code == 0, output
    assert "3 reports" in output  # Oct 5, Oct 6 and Nov 1
    code, _ = await run("--format", "pdf", *window, "--out", "x")
    assert code == 2


async def test_export_and_digest_in_the_chat(start_bot: BotStarter, fake: FakeTelegram) -> None:
    bot = await start_bot()
    admin = TgUser(ADMIN, first_name="Boss", language_code="zh-hans")
    fake.send_text(admin, "/export")
    caption, geo, open311 = await fake.wait_for_messages(ADMIN, 3)
    assert caption.kind == "document"
    assert caption.text.startswith("📒 台账 · ")
    assert caption.raw["document"]["file_name"].startswith("register-")
    assert geo.raw["document"]["file_name"].endswith(".geojson")
    assert open311.raw["document"]["file_name"].endswith(".zip")
    fake.send_text(admin, "/export next")
    *_, usage = await fake.wait_for_messages(ADMIN, 4)
    assert usage.text.startswith("用法：「/export」")

    await bot.run_job(fake, figures.digest_job)
    (digest,) = await fake.wait_for_messages(MODERATOR_CHAT, 1)
    assert digest.kind == "photo"
    assert digest.text.startswith("📈 每周简报 · ")
    assert "与前一周比" in digest.text
    assert fake.sent_to(ADMIN)[-1].kind == "photo"


def test_the_outcome_says_where_the_case_stands_in_the_departments_words() -> None:
    row = RegisterRow(
        reference="R-20261003-0001",
        submitted_at=0,
        decided_at=None,
        status="approved",
        category="road_hazard",
        latitude=None,
        longitude=None,
        description=None,
        reward_fen=None,
        points=None,
        department="roads",
        case_state="cannot_fix",
        dispatched_at=None,
        fixed_at=None,
        due_at=None,
        deadline_at=None,
        updated_at=0,
        payout_batch=None,
        photos=0,
        outcome_note="需要市里审批",
    )
    line = exports.Line(row, "城关镇", "道路隐患", "核实有效", "公路段")
    assert exports.outcome_text(line) == "无法处置：需要市里审批"
    waiting = dataclasses.replace(row, case_state=None, outcome_note=None)
    assert exports.outcome_text(exports.Line(waiting, "", "", "", "")) == ""
    reopened = dataclasses.replace(row, case_state="reopened", outcome_note=None)
    assert exports.outcome_text(exports.Line(reopened, "", "", "", "")) == "骑手反馈未修好，返工中"
