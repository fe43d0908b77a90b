/**
 * Assembles src/sticky/sha256.wat with the wabt npm package (a dev dependency) and writes
 * src/sticky/sha256_wasm.ts, the module that embeds the bytes; the gateway itself never
 * assembles anything, so it needs neither wabt nor the .wat at run time.
 *
 *     deno run -A src/sticky/sha256_wasm_build.ts
 *
 * tests/unit/hmac_sha256.test.ts assembles the .wat the same way and fails when the embedded
 * bytes differ, so an edit of the .wat cannot be forgotten here.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";

const WAT = fileURLToPath(new URL("./sha256.wat", import.meta.url));
const GENERATED = fileURLToPath(new URL("./sha256_wasm.ts", import.meta.url));
/** base64 characters a line of the generated module (its lines within deno fmt's 100). */
const LINE = 88;

/** The bytes of src/sticky/sha256.wat, assembled (reads the file: needs read permission). */
export async function assembleSha256(): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat("sha256.wat", readFileSync(WAT, "utf8"));
  try {
    parsed.validate();
    return new Uint8Array(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}

/**
 * The text of src/sticky/sha256_wasm.ts for `bytes`.
 *
 * @example
 * ```ts
 * import { generatedModule } from "./sha256_wasm_build.ts";
 * const text = generatedModule(new Uint8Array([0x00, 0x61, 0x73, 0x6d]));
 * if (!text.includes(`"AGFzbQ==",`) || !text.startsWith("// Generated from sha256.wat")) {
 *   throw new Error(text);
 * }
 * ```
 */
export function generatedModule(bytes: Uint8Array): string {
  let base64 = "";
  for (let i = 0; i < bytes.length; i += 3 * 1024) {
    base64 += btoa(String.fromCharCode(...bytes.subarray(i, i + 3 * 1024)));
  }
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += LINE) lines.push(`  "${base64.slice(i, i + LINE)}",`);
  return `// Generated from sha256.wat by sha256_wasm_build.ts (deno run -A src/sticky/sha256_wasm_build.ts):
// do not edit. tests/unit/hmac_sha256.test.ts fails when these bytes are not the .wat's.
/**
 * The WebAssembly module of SHA-256's compression and a short message's HMAC finish
 * (src/sticky/sha256.wat), ${bytes.length} bytes.
 *
 * @module
 */

const BASE64 = [
${lines.join("\n")}
].join("");

/** The module's bytes. */
export const SHA256_WASM: Uint8Array<ArrayBuffer> = Uint8Array.from(
  atob(BASE64),
  (c) => c.charCodeAt(0),
);
`;
}

if (import.meta.main) {
  const bytes = await assembleSha256();
  writeFileSync(GENERATED, generatedModule(bytes));
  console.log(`${GENERATED}: ${bytes.length} bytes`);
}
