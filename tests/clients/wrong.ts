// Deliberate type errors: tsc --strict must refuse each of the last five lines.
import type { paths } from "./types";

type Created = paths["/api/v1/cases"]["post"]["responses"]["201"]["content"]["application/json"];
type Stale = paths["/api/v1/cases/{number}/triggers/{trigger}"]["post"]["responses"]["412"]["content"]["application/problem+json"];
declare const c: Created;
declare const p: Stale;

export const a: number = c.number;
export const b: string = c.state.nope;
export const d: boolean = c.status.code;
export const e: number = p.current_version;
export const f: string = c.deadlines.promised;
