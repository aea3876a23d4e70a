"""Numbered schema migrations, applied when the store opens.

Each function is one step, run atomically by sqlite-utils' `Migrations` and
recorded in `_sqlite_migrations`, so re-opening a database applies nothing twice.
Never edit a migration that has shipped: add the next number instead.

Vector tables are not created here: there is one `vec0` table per embedding
dimension (see `passages.py`), made the first time a dimension is used.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("memgpt")

FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


def _fts_sql(table: str, column: str) -> str:
    """An external-content FTS5 index on `table.column`, kept in step by triggers."""
    fts = f"{table}_fts"
    return f"""
    CREATE VIRTUAL TABLE {fts} USING fts5(
        {column}, content='{table}', content_rowid='id', tokenize='{FTS_TOKENIZER}'
    );
    CREATE TRIGGER {table}_fts_ai AFTER INSERT ON {table} BEGIN
        INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});
    END;
    CREATE TRIGGER {table}_fts_ad AFTER DELETE ON {table} BEGIN
        INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
    END;
    CREATE TRIGGER {table}_fts_au AFTER UPDATE OF {column} ON {table} BEGIN
        INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
        INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});
    END;
    """


@migrations(name="m001_initial")
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE agents (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            preset TEXT NOT NULL,
            system_prompt TEXT NOT NULL,
            functions TEXT NOT NULL,
            persona TEXT,
            human TEXT,
            llm_config TEXT NOT NULL DEFAULT '{}',
            embedding_config TEXT NOT NULL DEFAULT '{}',
            embedding_model TEXT NOT NULL,
            embedding_dim INTEGER NOT NULL CHECK (embedding_dim > 0),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE memory_blocks (
            id INTEGER PRIMARY KEY,
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            value TEXT NOT NULL,
            char_limit INTEGER NOT NULL DEFAULT 2000 CHECK (char_limit > 0),
            position INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            UNIQUE (agent_id, label)
        );

        CREATE TABLE memory_edits (
            id INTEGER PRIMARY KEY,
            block_id INTEGER NOT NULL REFERENCES memory_blocks(id) ON DELETE CASCADE,
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            actor TEXT NOT NULL CHECK (actor IN ('agent', 'user', 'system')),
            cause TEXT NOT NULL,
            old_value TEXT NOT NULL,
            new_value TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX memory_edits_block ON memory_edits(block_id, id);

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT,
            name TEXT,
            tool_calls TEXT,
            tool_call_id TEXT,
            text TEXT NOT NULL DEFAULT '',
            in_context INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        CREATE INDEX messages_agent ON messages(agent_id, id);
        CREATE INDEX messages_agent_time ON messages(agent_id, created_at);
        CREATE INDEX messages_agent_context ON messages(agent_id, in_context, id);

        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            description TEXT NOT NULL DEFAULT '',
            embedding_model TEXT NOT NULL,
            embedding_dim INTEGER NOT NULL CHECK (embedding_dim > 0),
            created_at TEXT NOT NULL
        );

        CREATE TABLE agent_sources (
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            attached_at TEXT NOT NULL,
            PRIMARY KEY (agent_id, source_id)
        );

        -- A passage belongs to exactly one agent (its own archival memory) or one
        -- data source (shared by every agent the source is attached to).
        CREATE TABLE passages (
            id INTEGER PRIMARY KEY,
            agent_id INTEGER REFERENCES agents(id) ON DELETE CASCADE,
            source_id INTEGER REFERENCES sources(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            content_hash TEXT NOT NULL,
            embedding_model TEXT NOT NULL,
            embedding_dim INTEGER NOT NULL CHECK (embedding_dim > 0),
            embedding BLOB NOT NULL,
            created_at TEXT NOT NULL,
            CHECK ((agent_id IS NULL) != (source_id IS NULL))
        );
        CREATE INDEX passages_agent ON passages(agent_id, id);
        CREATE INDEX passages_source ON passages(source_id, content_hash);
        """
        + _fts_sql("messages", "text")
        + _fts_sql("passages", "text")
    )


@migrations(name="m002_agent_loop")
def m002_agent_loop(db: sqlite_utils.Database) -> None:
    """What the agent loop records: LLM usage per call, and the memory-pressure flag."""
    db.executescript(
        """
        ALTER TABLE agents ADD COLUMN memory_warning INTEGER NOT NULL DEFAULT 0;

        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY,
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            purpose TEXT NOT NULL DEFAULT 'step',
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX llm_calls_agent ON llm_calls(agent_id, id);
        CREATE INDEX messages_agent_role ON messages(agent_id, role);
        """
    )


@migrations(name="m003_counts")
def m003_counts(db: sqlite_utils.Database) -> None:
    """Running counts of recall messages and passages, kept by triggers.

    Every step renders these counts into the system message; count(*) over an
    agent's 100k messages costs milliseconds, a one-row lookup does not.
    """
    db.executescript(
        """
        CREATE TABLE message_counts (
            agent_id INTEGER PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
            n INTEGER NOT NULL
        );
        INSERT INTO message_counts (agent_id, n)
            SELECT agent_id, count(*) FROM messages WHERE role != 'system' GROUP BY agent_id;
        CREATE TRIGGER messages_count_ai AFTER INSERT ON messages WHEN new.role != 'system' BEGIN
            INSERT INTO message_counts (agent_id, n) VALUES (new.agent_id, 1)
                ON CONFLICT (agent_id) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER messages_count_ad AFTER DELETE ON messages WHEN old.role != 'system' BEGIN
            UPDATE message_counts SET n = n - 1 WHERE agent_id = old.agent_id;
        END;

        CREATE TABLE passage_counts (
            owner TEXT PRIMARY KEY,
            n INTEGER NOT NULL
        );
        INSERT INTO passage_counts (owner, n)
            SELECT CASE WHEN agent_id IS NOT NULL THEN 'a' || agent_id ELSE 's' || source_id END, count(*)
            FROM passages GROUP BY 1;
        CREATE TRIGGER passages_count_ai AFTER INSERT ON passages BEGIN
            INSERT INTO passage_counts (owner, n)
                VALUES (CASE WHEN new.agent_id IS NOT NULL THEN 'a' || new.agent_id ELSE 's' || new.source_id END, 1)
                ON CONFLICT (owner) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER passages_count_ad AFTER DELETE ON passages BEGIN
            UPDATE passage_counts SET n = n - 1
                WHERE owner = CASE WHEN old.agent_id IS NOT NULL THEN 'a' || old.agent_id ELSE 's' || old.source_id END;
        END;
        CREATE TRIGGER agents_counts_ad AFTER DELETE ON agents BEGIN
            DELETE FROM passage_counts WHERE owner = 'a' || old.id;
        END;
        CREATE TRIGGER sources_counts_ad AFTER DELETE ON sources BEGIN
            DELETE FROM passage_counts WHERE owner = 's' || old.id;
        END;
        """
    )


@migrations(name="m004_source_passage_dedup")
def m004_source_passage_dedup(db: sqlite_utils.Database) -> None:
    """A chunk is stored once per data source, enforced by the database.

    Two loads into one source running at once each checked "not stored yet" and
    then both inserted; only a constraint settles that race. Earlier duplicates
    are removed first, keeping the oldest row (its delete triggers drop the
    vector, FTS row and count with it).
    """
    db.executescript(
        """
        DELETE FROM passages WHERE source_id IS NOT NULL AND id NOT IN (
            SELECT min(id) FROM passages WHERE source_id IS NOT NULL GROUP BY source_id, content_hash
        );
        DROP INDEX passages_source;
        CREATE UNIQUE INDEX passages_source_hash ON passages(source_id, content_hash)
            WHERE source_id IS NOT NULL;
        """
    )


@migrations(name="m005_agent_name_key")
def m005_agent_name_key(db: sqlite_utils.Database) -> None:
    """Agent names are unique by `name_key` (NFKC + casefold), not by ASCII NOCASE.

    `Éva` and `éva`, or `K` (Kelvin sign) and `k`, were two agents under NOCASE
    while everything keyed by a lowered name mixed them. Existing names that now
    clash keep the oldest as is; later ones get `-2`, `-3`... appended.
    """
    from engine.names import MAX_NAME
    from engine.store.agents import name_key

    db.execute("ALTER TABLE agents ADD COLUMN name_key TEXT")
    rows = db.execute("SELECT id, name FROM agents ORDER BY id").fetchall()
    original = {name_key(name) for _, name in rows}
    taken: set[str] = set()
    for agent_id, name in rows:
        candidate, n = name, 1
        while name_key(candidate) in taken or (n > 1 and name_key(candidate) in original):
            n += 1
            suffix = f"-{n}"
            candidate = name[: MAX_NAME - len(suffix)] + suffix
        taken.add(name_key(candidate))
        db.execute("UPDATE agents SET name = ?, name_key = ? WHERE id = ?", [candidate, name_key(candidate), agent_id])
    db.execute("CREATE UNIQUE INDEX agents_name_key ON agents(name_key)")


@migrations(name="m006_recall_vectors")
def m006_recall_vectors(db: sqlite_utils.Database) -> None:
    """Messages get an embedding (for hybrid recall search) and passages a time index (time filters).

    The vectors are filled in after the fact (engine/recall_index.py), so a step never
    waits for an embedding; the partial index finds the messages still waiting.
    """
    db.execute("ALTER TABLE messages ADD COLUMN embedding BLOB")
    db.execute("ALTER TABLE messages ADD COLUMN embedding_model TEXT")
    db.execute("CREATE INDEX messages_unembedded ON messages(agent_id, id) WHERE embedding IS NULL")
    db.execute("CREATE INDEX passages_agent_time ON passages(agent_id, created_at)")


@migrations(name="m007_passage_changes")
def m007_passage_changes(db: sqlite_utils.Database) -> None:
    """`passage_counts.changes`: a token that moves when an owner's passages change other than by insertion.

    The in-memory bit arrays of approximate search (engine/store/bitindex.py) stay
    valid across inserts (they fetch the new rows) and are rebuilt when this moves:
    on a delete or a new embedding. It comes from one counter for the whole
    database, `passage_generation`, which also moves when an owner is deleted; an
    owner's row created afresh takes the counter as it is then, so an owner deleted
    and made again (ids are reused) never matches an array built for the old one.
    Inserts, the common write, do no more work than before.
    """
    db.executescript(
        """
        CREATE TABLE passage_generation (g INTEGER NOT NULL);
        INSERT INTO passage_generation (g) VALUES (1);
        ALTER TABLE passage_counts ADD COLUMN changes INTEGER NOT NULL DEFAULT 0;

        DROP TRIGGER passages_count_ai;
        CREATE TRIGGER passages_count_ai AFTER INSERT ON passages BEGIN
            INSERT INTO passage_counts (owner, n, changes)
                VALUES (CASE WHEN new.agent_id IS NOT NULL THEN 'a' || new.agent_id ELSE 's' || new.source_id END, 1,
                        (SELECT g FROM passage_generation))
                ON CONFLICT (owner) DO UPDATE SET n = n + 1;
        END;
        DROP TRIGGER passages_count_ad;
        CREATE TRIGGER passages_count_ad AFTER DELETE ON passages BEGIN
            UPDATE passage_generation SET g = g + 1;
            UPDATE passage_counts SET n = n - 1, changes = (SELECT g FROM passage_generation)
                WHERE owner = CASE WHEN old.agent_id IS NOT NULL THEN 'a' || old.agent_id ELSE 's' || old.source_id END;
        END;
        CREATE TRIGGER passages_changes_au AFTER UPDATE OF embedding, embedding_dim, agent_id, source_id ON passages
        BEGIN
            UPDATE passage_generation SET g = g + 1;
            UPDATE passage_counts SET changes = (SELECT g FROM passage_generation) WHERE owner IN (
                CASE WHEN old.agent_id IS NOT NULL THEN 'a' || old.agent_id ELSE 's' || old.source_id END,
                CASE WHEN new.agent_id IS NOT NULL THEN 'a' || new.agent_id ELSE 's' || new.source_id END);
        END;
        DROP TRIGGER agents_counts_ad;
        CREATE TRIGGER agents_counts_ad AFTER DELETE ON agents BEGIN
            UPDATE passage_generation SET g = g + 1;
            DELETE FROM passage_counts WHERE owner = 'a' || old.id;
        END;
        DROP TRIGGER sources_counts_ad;
        CREATE TRIGGER sources_counts_ad AFTER DELETE ON sources BEGIN
            UPDATE passage_generation SET g = g + 1;
            DELETE FROM passage_counts WHERE owner = 's' || old.id;
        END;
        """
    )


@migrations(name="m008_block_removal")
def m008_block_removal(db: sqlite_utils.Database) -> None:
    """A removed core memory block is marked, not deleted: its edits (which cascade with it) stay visible."""
    db.execute("ALTER TABLE memory_blocks ADD COLUMN removed_at TEXT")


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations; return the names of those applied now."""
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending
