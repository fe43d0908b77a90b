import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "../../src/config/mod.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe("parseDuration (nginx time syntax)", () => {
  it("reads a bare number as seconds", () => {
    assert.equal(parseDuration("90"), 90 * SECOND);
    assert.equal(parseDuration("3600"), HOUR);
    assert.equal(parseDuration("1"), SECOND);
  });

  it("reads every unit: s m h d w M (30 days) y (365 days)", () => {
    assert.equal(parseDuration("30s"), 30 * SECOND);
    assert.equal(parseDuration("10m"), 10 * MINUTE);
    assert.equal(parseDuration("1h"), HOUR);
    assert.equal(parseDuration("2d"), 2 * DAY);
    assert.equal(parseDuration("1w"), 7 * DAY);
    assert.equal(parseDuration("1M"), 30 * DAY);
    assert.equal(parseDuration("1y"), 365 * DAY);
  });

  it("adds up combined terms written from the largest unit down", () => {
    assert.equal(parseDuration("1h30m"), HOUR + 30 * MINUTE);
    assert.equal(
      parseDuration("1y1M1w1d1h1m1s"),
      365 * DAY + 30 * DAY + 7 * DAY + DAY + HOUR + MINUTE + SECOND,
    );
    assert.equal(parseDuration("1m30s"), 90 * SECOND);
  });

  it("reads a trailing number without a unit as seconds (1h30 = 1h 30s)", () => {
    assert.equal(parseDuration("1h30"), HOUR + 30 * SECOND);
  });

  it("accepts ms by default, alone or as the last term", () => {
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("1s500ms"), 1500);
    assert.equal(parseDuration("1m5ms"), MINUTE + 5);
  });

  it("refuses ms when milliseconds are not allowed, but still reads the other units", () => {
    assert.equal(parseDuration("1ms", false), null);
    assert.equal(parseDuration("1s500ms", false), null);
    assert.equal(parseDuration("1m", false), MINUTE);
    assert.equal(parseDuration("90", false), 90 * SECOND);
  });

  it('returns 0 for "0" (the config, not the parser, sets the minimum)', () => {
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration("0s"), 0);
  });

  it("tells m (minutes) from M (months) and ms", () => {
    assert.equal(parseDuration("2m"), 2 * MINUTE);
    assert.equal(parseDuration("2M"), 60 * DAY);
    assert.equal(parseDuration("2ms"), 2);
  });

  for (
    const [text, why] of [
      ["", "empty"],
      ["-1", "a sign"],
      ["+1", "a sign"],
      ["max", "a word"],
      ["abc", "a word"],
      ["10x", "an unknown unit"],
      ["1H", "upper-case h"],
      ["30m1h", "units in the wrong order"],
      ["1h1h", "a unit twice"],
      [" 30s", "a leading space"],
      ["1 h", "a space between a number and its unit"],
      ["5 s", "a space between a number and its unit"],
      ["1h\t30m", "a tab (nginx skips spaces only)"],
      ["1.5h", "a fraction"],
      ["s", "a unit without a number"],
      ["30 1h", "a bare number that is not the last term"],
    ] as const
  ) {
    it(`rejects ${JSON.stringify(text)} (${why})`, () => {
      assert.equal(parseDuration(text), null);
    });
  }

  // ngx_parse_time (src/core/ngx_parse.c) skips spaces after each unit, so the quoted form
  // `expires="1h 30m"` is one value there; a bare number followed by a space is seconds and must
  // be the last term.
  it("accepts spaces between terms, as nginx does (after a unit, any number)", () => {
    assert.equal(parseDuration("1h 30m"), HOUR + 30 * MINUTE);
    assert.equal(parseDuration("1h 30m", false), HOUR + 30 * MINUTE);
    assert.equal(parseDuration("1d  12h 30m 15s"), DAY + 12 * HOUR + 30 * MINUTE + 15 * SECOND);
    assert.equal(parseDuration("1s 500ms"), 1500);
    assert.equal(parseDuration("1h 30"), HOUR + 30 * SECOND);
  });

  it("accepts trailing spaces, as nginx does", () => {
    assert.equal(parseDuration("30s "), 30 * SECOND);
    assert.equal(parseDuration("90  "), 90 * SECOND);
    assert.equal(parseDuration("1h 30 "), HOUR + 30 * SECOND);
  });

  it("keeps nginx's order rule across spaces", () => {
    assert.equal(parseDuration("30m 1h"), null);
    assert.equal(parseDuration("1h 1h"), null);
    assert.equal(parseDuration("30 1h"), null);
  });

  // nginx accepts these by accident of its state machine (a unit with no digits adds 0; a leading
  // space before a bare number is skipped; a bare number is added after any unit). They mean
  // nothing anyone would write, so they stay errors here, as prefix matches do (README).
  for (
    const [text, nginx] of [
      ["1hm", "1h"],
      ["h1m", "1m"],
      [" 30", "30s"],
      ["30 40", "70s"],
      ["1s30", "31s"],
      ["1s 30", "31s"],
      ["500ms5", "5.5s"],
    ] as const
  ) {
    it(`rejects ${JSON.stringify(text)} (nginx reads ${nginx})`, () => {
      assert.equal(parseDuration(text), null);
    });
  }

  it("rejects totals beyond the safe integer range", () => {
    assert.equal(parseDuration("999999999999999999y"), null);
  });
});

describe("formatDuration", () => {
  it("writes the largest units first", () => {
    assert.equal(formatDuration(HOUR + 30 * MINUTE), "1h30m");
    assert.equal(formatDuration(90 * SECOND), "1m30s");
    assert.equal(formatDuration(1500), "1s500ms");
    assert.equal(formatDuration(10 * SECOND), "10s");
    assert.equal(formatDuration(365 * DAY), "1y");
    assert.equal(formatDuration(30 * DAY), "1M");
    assert.equal(formatDuration(8 * DAY), "1w1d");
  });

  it("writes zero as 0s", () => {
    assert.equal(formatDuration(0), "0s");
  });

  it("round-trips through parseDuration", () => {
    for (const ms of [1, 999, SECOND, 61 * SECOND, 5_400_000, 2 * DAY + 3 * HOUR, 400 * DAY + 7]) {
      const text = formatDuration(ms);
      assert.equal(parseDuration(text), ms, `${ms} → ${text}`);
    }
  });
});
