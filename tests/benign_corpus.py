"""A corpus of benign memories for measuring screening's false alarms: the bundled demo, the
sample documents, the extraction fixtures, the project's own design docs, code from its own
source, and ordinary commands. Everything an agent might honestly keep."""

from __future__ import annotations

import json
import re
from pathlib import Path

from memwarden.cli import demo

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = (
    "git rebase -i HEAD~3 && git push --force-with-lease origin feature/telemetry",
    "docker compose -f deploy/compose.yaml up -d --build api worker",
    "kubectl -n atlas rollout restart deployment/telemetry-ingest",
    "curl -sS -H 'Authorization: Bearer $TOKEN' https://api.example.com/v1/launches | jq '.[0]'",
    "psql -h 127.0.0.1 -U postgres -d test -c 'SELECT count(*) FROM memories;'",
    "pip install 'sqlalchemy>=2.0' 'alembic>=1.13' && pip check",
    "python -m pytest tests/test_recall_context.py -q -p no:cacheprovider -k postgresql",
    "ruff check src tests && ruff format src tests && mypy",
    "memwarden key create ci-bot --role write --project atlas",
    "memwarden recall 'what does the Petrel-7 engine burn' --project atlas-rocket",
    "ssh -L 5432:localhost:5432 ops@bastion.internal",
    "find . -name '*.pyc' -delete && rm -rf build dist *.egg-info",
    "tar -czf backup-$(date +%F).tar.gz /var/lib/memwarden",
    "systemctl restart memwarden && journalctl -u memwarden -f",
    "echo 'aGVsbG8gd29ybGQ=' | base64 -d",
    "openssl rand -hex 32 > ~/.memwarden/ledger.key && chmod 600 ~/.memwarden/ledger.key",
    "sha256sum dist/memwarden-0.9.0.tar.gz",
    "export MEMWARDEN_DATABASE_URL=postgresql+psycopg://root@127.0.0.1:5432/test",
    "npm ci && npm run build -- --mode production",
    "terraform plan -var-file=prod.tfvars -out=plan.bin",
    "awk -F, '{sum += $3} END {print sum}' thrust.csv",
    "sed -i 's/old_name/new_name/g' src/**/*.py",
    "grep -rn 'TODO' src | wc -l",
    "aws s3 sync ./telemetry s3://atlas-telemetry/2027-06/ --exclude '*.tmp'",
    "crontab -e  # 15 3 * * * memwarden nightly run",
    "make soak",
    "uvicorn memwarden.api:app --host 127.0.0.1 --port 8100",
    "redis-cli -n 2 FLUSHDB",
    "gpg --verify memwarden-0.9.0.tar.gz.asc",
    "htop -p $(pgrep -d, -f 'memwarden serve')",
)

PROSE_SUBJECTS = (
    "The telemetry service",
    "Our staging cluster",
    "The nightly pipeline",
    "The payment worker",
    "The search index",
    "The mobile client",
    "The auth gateway",
    "The data warehouse",
    "The build farm",
    "The alerting webhook",
)
PROSE_FACTS = (
    "runs on PostgreSQL 15 with a read replica in the second zone.",
    "retries failed requests three times with exponential backoff starting at 200 ms.",
    "must be deployed after the schema migration, never before it.",
    "logs in JSON lines to stdout; the collector ships them to Loki.",
    "keeps seven days of backups and tests a restore every Monday.",
    "was moved from Python 3.10 to 3.11 in March; the old image is gone.",
    "reads its settings from environment variables prefixed with the service name.",
    "times out after 30 seconds; the client shows a retry button.",
    "uses a partial unique index so that concurrent writers cannot create duplicates.",
    "is owned by the platform team; page them through the on-call rotation.",
    "should ignore health-check traffic when computing latency percentiles.",
    "drops rows older than 90 days in batches of 1000 to keep the lock short.",
)

CODE = (
    "def median(xs: list[float]) -> float:\n    s = sorted(xs)\n    n = len(s)\n"
    "    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2",
    "SELECT project, count(*) FROM memories WHERE status = 'active' GROUP BY project;",
    "const retry = async (fn, n = 3) => { try { return await fn() } catch (e) "
    "{ if (n) return retry(fn, n - 1); throw e } }",
    '<div class="card"><h2>{{ title }}</h2><p>{{ body }}</p></div>',
    '{"name": "atlas", "version": "1.4.2", "dependencies": {"fastapi": ">=0.110"}}',
    'for f in *.md; do pandoc "$f" -o "${f%.md}.html"; done',
    'fn main() { let v: Vec<u32> = (1..=10).collect(); println!("{:?}", v); }',
    "with engine.begin() as conn:\n    conn.execute(text('VACUUM'))",
    '[tool.ruff]\nline-length = 100\ntarget-version = "py311"',
    'FROM python:3.11-slim\nRUN pip install --no-cache-dir memwarden\nCMD ["memwarden", "serve"]',
)


def _paragraphs(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"\n\s*\n", text)]
    return [p for p in parts if len(p) >= 30]


def _functions(source: str) -> list[str]:
    blocks = re.split(r"\n(?=def |class |    def )", source)
    return [b.strip() for b in blocks if 40 <= len(b) <= 4000]


def corpus() -> list[str]:
    items: list[str] = []
    items += [
        f"{category}/{key}: {value} ({source})" for category, key, value, source in demo.STATE
    ]
    items += [content for _, _, content, _ in demo.MEMORIES]
    for path in sorted((ROOT / "src/memwarden/sample/atlas-rocket").glob("*.md")):
        items += _paragraphs(path.read_text(encoding="utf-8"))
    for line in (ROOT / "tests/fixtures/extraction_corpus.jsonl").read_text().splitlines():
        case = json.loads(line)
        items += [case["prompt"], case["response"]]
    for doc in ("docs/architecture.md", "docs/ledger.md"):
        items += _paragraphs((ROOT / doc).read_text(encoding="utf-8"))
    for module in ("recall.py", "memories.py", "lifecycle.py", "projects.py", "ingest.py"):
        items += _functions((ROOT / "src/memwarden/core" / module).read_text(encoding="utf-8"))
    items += list(COMMANDS)
    items += [f"{s} {f}" for s in PROSE_SUBJECTS for f in PROSE_FACTS]
    items += list(CODE)
    return items
