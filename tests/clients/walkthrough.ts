// The clerk walk of tests/test_generated_clients.py, typed by openapi-typescript's types.d.ts.
import type { components, paths } from "./types";

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

type Created = paths["/api/v1/cases"]["post"]["responses"]["201"]["content"]["application/json"];
type CreateBody = paths["/api/v1/cases"]["post"]["requestBody"]["content"]["application/json"];
type Trigger = paths["/api/v1/cases/{number}/triggers/{trigger}"]["post"];
type CaseView = Trigger["responses"]["200"]["content"]["application/json"];
type Stale = Trigger["responses"]["412"]["content"]["application/problem+json"];
type Queue = paths["/api/v1/cases"]["get"]["responses"]["200"]["content"]["application/json"];
type Progress = paths["/api/v1/progress/{number}"]["get"]["responses"]["200"]["content"]["application/json"];
type Problem = components["schemas"]["Problem"];
type TriggerBody = components["schemas"]["TriggerBody"];

const base = process.env.TONGBAN_URL ?? "";
const token = (who: string): string => process.env[who] ?? "";

async function call<T>(method: string, path: string, who: string | null, init: { body?: unknown; ifMatch?: number } = {},
                       expect = 200): Promise<T> {
  const headers: Record<string, string> = {};
  if (who) headers["Authorization"] = `Bearer ${token(who)}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  if (init.ifMatch !== undefined) headers["If-Match"] = `"${init.ifMatch}"`;
  const r = await fetch(base + path, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  if (r.status !== expect) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

async function main(): Promise<void> {
  const body: CreateBody = {
    item_code: "FGSFZRBG", competent_region: "370211",
    applicant: { name: "青岛某某贸易有限公司黄岛分公司", kind: "company", id_number: "91370211061338419U",
                 address: "山东省青岛市黄岛区长江中路 216 号" },
    materials: { application: "received", power_of_attorney: "received", appointment_docs: "received", license: "received" },
    situation: { agent: "agent" },  // 委托代理人办理: the 授权委托书 is asked for
  };
  const c: Created = await call<Created>("POST", "/api/v1/cases", "WANG", { body }, 201);
  const num: string = c.number;
  const state: string = c.state.id;
  const code: number = c.status.code;
  const queryCode: string = c.query_code;
  const fwd: CaseView = await call<CaseView>("POST", `/api/v1/cases/${num}/triggers/forward`, "WANG", { ifMatch: c.version });
  const holders: string[] = fwd.holders;
  const queue: Queue = await call<Queue>("GET", "/api/v1/cases", "LI");
  const queued: boolean = queue.items.some((e) => e.number === num);
  const stale: Stale = await call<Stale>("POST", `/api/v1/cases/${num}/triggers/approve`, "LI", { ifMatch: c.version }, 412);
  const current: number | undefined = stale.current_version;
  let v: number = fwd.version;
  // 核准 carries what the 分公司营业执照 states; the approve trigger's certificate_fields name them.
  const asked: string[] = (fwd.triggers.find((t) => t.trigger === "approve")?.certificate_fields ?? []).map((f) => f.id);
  const licence: Record<string, string> = { company_type: "有限责任公司分公司", head: "张建国",
    head_id_number: "11010519491231002X", established_on: "2019-03-18", scope: "日用百货销售" };
  const bodies: Record<string, TriggerBody | undefined> = { approve: { data: { certificate: licence } } };
  for (const [trigger, who] of [["approve", "LI"], ["issue", "LI"], ["hand_over", "WANG"]] as const) {
    const next: CaseView = await call<CaseView>("POST", `/api/v1/cases/${num}/triggers/${trigger}`, who,
                                                { ifMatch: v, body: bodies[trigger] });
    v = next.version;
  }
  const invalid: Problem = await call<Problem>("POST", "/api/v1/cases", "WANG",
                                               { body: { ...body, competent_region: "12" } }, 422);
  const fields: string[] = (invalid.errors ?? []).map((e) => e.field);
  const p: Progress = await call<Progress>("GET", `/api/v1/progress/${num}?code=${queryCode}`, null);
  const status: string = p.status.label;
  const finished: string | null = p.finished_at;
  console.log(JSON.stringify({ num, state, code, holders, queued, current, v, fields, status, finished, asked,
                               steps: p.steps.map((s) => s.label) }));
}

main().catch((e: unknown) => { console.error(String(e)); process.exitCode = 1; });
