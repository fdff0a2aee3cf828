"""The baseline for bench/crowd.py: a bare python-telegram-bot bot answering /start.

Stock PTB: `AIORateLimiter` with its default buckets and retries on 429, no database, no
locales. Configured by BOT_TOKEN and BOT_API_URL like the real bot; with WEBHOOK_URL,
WEBHOOK_LISTEN (host:port) and WEBHOOK_SECRET set, it runs PTB's webhook server like bot.py does,
else it polls.
"""

from __future__ import annotations

import os

from telegram import Update
from telegram.ext import AIORateLimiter, ApplicationBuilder, CommandHandler, ContextTypes


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo a greeting."""
    if update.effective_chat:
        await context.bot.send_message(update.effective_chat.id, "Hi!")


def main() -> None:
    api = os.environ["BOT_API_URL"]
    app = (
        ApplicationBuilder()
        .token(os.environ["BOT_TOKEN"])
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(AIORateLimiter(max_retries=5))
        .concurrent_updates(True)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    url = os.environ.get("WEBHOOK_URL", "")
    if not url:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
        return
    host, _, port = os.environ.get("WEBHOOK_LISTEN", "127.0.0.1:8443").rpartition(":")
    app.run_webhook(
        listen=host,
        port=int(port),
        url_path=url.split("://", 1)[1].partition("/")[2],
        webhook_url=url,
        secret_token=os.environ["WEBHOOK_SECRET"],
        allowed_updates=Update.ALL_TYPES,
    )


if __name__ == "__main__":
    main()
