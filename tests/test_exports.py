"""The register as XLSX, GeoJSON and Open311: readable, in their formats, no personal data."""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from pathlib import Path

import openpyxl

from handlers import figures
from services import exports
from settings import Department, Programme, Settings
from storage.db import Database
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
    files = await october(db, tmp_path)
    assert files.count == 3
    assert files.name("xlsx") == "register-2026-10.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(files.xlsx))
    assert book.sheetnames == ["台账", "汇总", "概况", "部门绩效"]
    rows = list(book["台账"].iter_rows(values_only=True))
    assert rows[0][:3] == ("编号", "提交时间", "审核时间")
    assert rows[1][:3] == ("Reference", "Submitted", "Decided")
    first = rows[2]
    assert first[1] == "2026-10-03 09:00"
    assert first[3] == "2026-10-03 11:00"
    assert first[4] == "2026-10-04 08:00"
    assert first[5] == "道路隐患"
    assert first[9] == "核实有效"
    assert first[10] == "公路段"
    assert first[11] == 100
    assert first[14] == LONG
    assert rows[3][6] is None  # no place
    assert len(rows) == 5
    totals = list(book["汇总"].iter_rows(values_only=True))
    assert ("处置单位 Department", "公路段", 1, 1, 100, 1) in totals
    summary = {row[0]: row[1] for row in book["概况"].iter_rows(values_only=True)}
    assert summary["收到线索 Reports received"] == 3
    assert summary["核实有效 Verified"] == 1
    unzipped = zipfile.ZipFile(io.BytesIO(files.xlsx))
    for name in unzipped.namelist():
        no_personal_data(unzipped.read(name))


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
