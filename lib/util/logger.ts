/** A small levelled logger; the library writes through it and the CLI decides where lines go. */

/** Log levels, lowest first; names as Go EdgeVPN's `--log-level` accepts them. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** One log record as handed to a sink. */
export interface LogRecord {
  level: LogLevel;
  /** Component that logged, e.g. `node`, `ledger`. */
  logger: string;
  msg: string;
  fields?: Record<string, unknown>;
  time: Date;
}

/** Where records go; the CLI supplies one that writes to stderr. */
export type LogSink = (record: LogRecord) => void;

/**
 * Logger handed to every component.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info", sink: (r) => console.error(r.msg) });
 * log.child("node").info("started", { peers: 3 });
 * ```
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** True when records of this level are written (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
  /** A logger for a sub-component, named `parent.name`. */
  child(name: string): Logger;
}

/**
 * Creates a logger writing records at or above `level` to `sink`.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const log = createLogger({ level: "warn", sink: (r) => lines.push(r.msg) });
 * log.info("hidden");
 * log.warn("kept");
 * ```
 */
export function createLogger(
  options: { level?: LogLevel; sink?: LogSink; name?: string } = {},
): Logger {
  const min = LOG_LEVELS.indexOf(options.level ?? "info");
  const sink = options.sink;
  const make = (name: string): Logger => {
    const write = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
      if (sink && LOG_LEVELS.indexOf(level) >= min) {
        sink({ level, logger: name, msg, fields, time: new Date() });
      }
    };
    return {
      debug: write("debug"),
      info: write("info"),
      warn: write("warn"),
      error: write("error"),
      enabled: (level) => sink !== undefined && LOG_LEVELS.indexOf(level) >= min,
      child: (child) => make(name ? `${name}.${child}` : child),
    };
  };
  return make(options.name ?? "");
}

/**
 * A logger that drops everything; the default when a caller passes none.
 *
 * @example
 * ```ts
 * silentLogger.info("goes nowhere");
 * ```
 */
export const silentLogger: Logger = createLogger({});

/** How log lines are written: `text` for people, `json` for log collectors. */
export const LOG_FORMATS = ["text", "json"] as const;
/** One of {@link LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Field names whose values are replaced by `[redacted]` in every log line. */
const SECRET_FIELD = /token|secret|password|authorization|cookie|otp|privkey|private/i;

function redact(fields: Record<string, unknown> | undefined): [string, unknown][] {
  return Object.entries(fields ?? {}).map(([k, v]) => [k, SECRET_FIELD.test(k) ? "[redacted]" : v]);
}

/**
 * One log line (with its newline). `json` keeps Go EdgeVPN's zap field names: `level`, `ts`
 * (Unix seconds), `logger`, `msg`, then the record's fields; `text` is
 * `time LEVEL logger: msg key=value…`. Fields named like secrets (token, password,
 * authorization, cookie, …) are written as `[redacted]`.
 *
 * @example
 * ```ts
 * formatLogRecord({ level: "info", logger: "node", msg: "started", time: new Date(0) }, "json");
 * // '{"level":"info","ts":0,"logger":"node","msg":"started"}\n'
 * ```
 */
export function formatLogRecord(record: LogRecord, format: LogFormat): string {
  const fields = redact(record.fields);
  if (format === "json") {
    const line: Record<string, unknown> = {
      level: record.level,
      ts: record.time.getTime() / 1000,
      logger: record.logger || "edgevpn",
      msg: record.msg,
    };
    for (const [k, v] of fields) if (!(k in line)) line[k] = v;
    return JSON.stringify(line, (_k, v) => typeof v === "bigint" ? v.toString() : v) + "\n";
  }
  const text = fields.map(([k, v]) =>
    ` ${k}=${typeof v === "string" ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`
  ).join("");
  return `${record.time.toISOString()} ${record.level.toUpperCase().padEnd(5)} ${
    record.logger ? record.logger + ": " : ""
  }${record.msg}${text}\n`;
}
