"""The review card, drawn without Telegram's network: caption, decision buttons, menus.

Pure rendering from a `services.moderation.Card`; handlers/review.py sends and edits it.
Button data comes from the codec (handlers/callbacks.py), one verb per kind of press.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.callbacks import Verb
from handlers.common import Runtime
from locales import Texts
from services.moderation import Card
from services.reporting import ReportStatus
from settings import Settings

CAPTION_LIMIT = 1024
QUOTE_LIMIT = 200  # of a question or an answer on the card

APPROVE = Verb("ap")  # argument: the amount in fen
CONFIRM = Verb("cf")  # a second moderator confirms a large proposal
REJECT_MENU = Verb("rj")
REJECT = Verb("rr")  # argument: the reason
DUPLICATE_MENU = Verb("dp")
DUPLICATE = Verb("dd")  # argument: the original report's id
ASK = Verb("ask")
BACK = Verb("bk")
PHOTOS = Verb("ph")
VOICES = Verb("vc")  # play the rider's voice notes
PIN = Verb("pin")
DECISIONS = (APPROVE, CONFIRM, REJECT, DUPLICATE)
MENUS = (REJECT_MENU, DUPLICATE_MENU, ASK, BACK, PHOTOS, VOICES, PIN)


class CardView:
    """Draws cards in one language."""

    def __init__(self, texts: Texts, settings: Settings, language: str) -> None:
        self.texts = texts
        self.settings = settings
        self.language = language

    def t(self, key: str, /, **params: object) -> str:
        return self.texts.get(self.language, key, **params)

    def caption(self, card: Card) -> str:
        """The card's text: everything needed to judge the report, then its state."""

        t, texts, settings, language = self.t, self.texts, self.settings, self.language
        zone = settings.timezone
        category = settings.programme.category(card.category or "")
        lines = [
            ("🚨 " if category and category.urgent else "")
            + t(
                "card.title",
                reference=card.reference,
                category=category.name(language) if category else "-",
            ),
            t(
                "card.times",
                submitted=texts.when(language, card.submitted_at, zone),
                deadline=texts.when(language, card.deadline_at, zone),
            ),
        ]
        osm = ""
        if card.latitude is not None and card.longitude is not None:
            lat, lon = f"{card.latitude:.5f}", f"{card.longitude:.5f}"
            lines.append(t("card.location", latitude=lat, longitude=lon))
            lines.append(amap_link(card.reference, lat, lon))
            osm = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"
        if settings.programme.towns or card.town:
            town = card.town or t("town.none")
            lines.append(t("case.card.town", town=town + (f" · {card.grid}" if card.grid else "")))
        if card.venue_name:
            lines.append(t("case.card.venue", venue=card.venue_name))
        if card.photo_distance_m is not None:
            lines.append(t("card.photo_distance", metres=round(card.photo_distance_m)))
        approved, rejected, total = card.track
        lines.append(t("card.track", approved=approved, rejected=rejected, total=total))
        flags = self.flags(card)
        if flags:
            lines.append("⚠️ " + " · ".join(flags))
        if card.photo_count > 1:
            lines.append(t("card.photos", count=card.photo_count))
        if card.voices:
            seconds = sum(seconds for _, seconds in card.voices)
            lines.append(t("card.voices", count=len(card.voices), seconds=seconds))
        if card.question:
            lines.append(t("card.question", question=_short(card.question, QUOTE_LIMIT)))
        if card.answer:
            lines.append(t("card.answer", answer=_short(card.answer, QUOTE_LIMIT)))
        budget = self.budget_line(card)
        if budget is not None:
            lines.append(budget)
        lines.append(self.state_line(card))
        description = (
            t("card.description", description=card.description) if card.description else ""
        )
        if osm and len("\n".join(filter(None, [*lines, osm, description]))) <= CAPTION_LIMIT:
            lines.insert(4, osm)  # after the Amap link, when the rider's words still fit whole
        head = "\n".join(lines)
        if not description:
            return _short(head, CAPTION_LIMIT)
        return _short(
            f"{head}\n{_short(description, CAPTION_LIMIT - len(head) - 1)}", CAPTION_LIMIT
        )

    def flags(self, card: Card) -> list[str]:
        """What should make a moderator look twice: an old or moved photo, a lookalike, a
        report of the same place."""
        t = self.t
        flags = []
        if card.not_fresh:
            flags.append(t("card.flag.not_fresh"))
        if card.mismatch:
            flags.append(t("card.flag.mismatch"))
        if card.lookalikes:
            flags.append(t("card.flag.lookalike", references=_some(card.lookalikes)))
        if card.nearby:
            references = _some([reference for _, reference in card.nearby])
            radius = self.settings.programme.review.duplicate_radius_m
            flags.append(t("card.flag.nearby", references=references, metres=radius))
        return flags

    def budget_line(self, card: Card) -> str | None:
        """The month's (or else the year's) reward budget in use, while the report waits."""
        if card.budget is None or card.status != ReportStatus.PENDING:
            return None
        use, money, language = card.budget, self.texts.money, self.language
        key, used, budget, percent = (
            ("card.budget", use.used_fen, use.budget_fen, use.percent)
            if use.budget_fen is not None
            else ("card.budget_year", use.year_used_fen, use.year_budget_fen, use.year_percent)
        )
        assert budget is not None
        return self.t(
            key, used=money(language, used), budget=money(language, budget), percent=percent
        )

    def state_line(self, card: Card) -> str:
        t, texts, settings, language = self.t, self.texts, self.settings, self.language
        when = texts.when(language, card.decided_at, settings.timezone) if card.decided_at else ""
        if card.status == ReportStatus.APPROVED:
            return t(
                "card.state.approved",
                amount=texts.money(language, card.reward_fen or 0),
                points=card.points or 0,
                moderator=card.who(card.decided_by),
                when=when,
            )
        if card.status == ReportStatus.REJECTED:
            reason = t(f"reject.{card.reject_reason}")
            return t(
                "card.state.rejected", reason=reason, moderator=card.who(card.decided_by), when=when
            )
        if card.status == ReportStatus.DUPLICATE:
            return t(
                "card.state.duplicate",
                original=card.duplicate_reference or "-",
                moderator=card.who(card.decided_by),
                when=when,
            )
        if card.status == ReportStatus.NEEDS_INFO:
            return t("card.state.needs_info")
        if card.status == ReportStatus.PENDING and card.proposed_by is not None:
            return t(
                "card.state.proposed",
                amount=texts.money(language, card.proposed_fen or 0),
                moderator=card.who(card.proposed_by),
            )
        if card.status == ReportStatus.PENDING:
            return t("card.state.pending")
        return t(f"status.{card.status}")

    def decision_buttons(self, card: Card) -> InlineKeyboardMarkup | None:
        """The buttons of an open card; None once it is decided."""
        if card.status != ReportStatus.PENDING:
            return None

        def button(
            key: str, verb: Verb, argument: str | int = "", **params: object
        ) -> InlineKeyboardButton:
            return InlineKeyboardButton(
                self.t(key, **params), callback_data=verb.data(card.report_id, argument)
            )

        programme = self.settings.programme
        rows: list[list[InlineKeyboardButton]] = []
        if card.proposed_by is not None:
            amount = self.texts.money(self.language, card.proposed_fen or 0)
            rows.append([button("card.button.confirm", CONFIRM, amount=amount)])
        else:
            category = programme.category(card.category or "")
            default = category.default_reward_fen if category else None
            rows.append(
                [
                    button(
                        "card.button.approve_default" if fen == default else "card.button.approve",
                        APPROVE,
                        fen,
                        yuan=fen // 100,
                    )
                    for fen in programme.review.tiers_fen
                ]
            )
        rows.append(
            [
                button("card.button.reject", REJECT_MENU),
                button("card.button.duplicate", DUPLICATE_MENU),
                button("card.button.ask", ASK),
            ]
        )
        extras = [button("card.button.pin", PIN)]
        if card.photo_count > 1:
            extras.insert(0, button("card.button.photos", PHOTOS, count=card.photo_count))
        if any(file_id for file_id, _ in card.voices):
            extras.insert(0, button("card.button.voices", VOICES, count=len(card.voices)))
        rows.append(extras)
        return InlineKeyboardMarkup(rows)

    def choice_buttons(
        self, card: Card, verb: Verb, choices: list[tuple[str, str | int]]
    ) -> InlineKeyboardMarkup:
        """A second-level menu (reasons, duplicates) with a way back."""
        rows = [
            [InlineKeyboardButton(label, callback_data=verb.data(card.report_id, argument))]
            for label, argument in choices
        ]
        back = InlineKeyboardButton(
            self.t("card.button.back"), callback_data=BACK.data(card.report_id)
        )
        return InlineKeyboardMarkup([*rows, [back]])


def amap_link(reference: str, latitude: str, longitude: str) -> str:
    """An Amap marker that opens the app on a phone; `coordinate=wgs84` takes GPS as-is."""
    return (
        f"https://uri.amap.com/marker?position={longitude},{latitude}"
        f"&coordinate=wgs84&name={reference}&callnative=1"
    )


def _short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _some(references: list[str] | tuple[str, ...], shown: int = 5) -> str:
    """A few references, and how many more there are."""
    more = len(references) - shown
    return ", ".join(references[:shown]) + (f" (+{more})" if more > 0 else "")


UNSENDABLE = 0  # card_message_id of a card Telegram refused


def view(runtime: Runtime, language: str | None = None) -> CardView:
    return CardView(runtime.texts, runtime.settings, language or runtime.languages.default)
