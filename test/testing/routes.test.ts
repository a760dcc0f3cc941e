/**
 * The fakes' route tables agree with the discovery documents: HTTP method, path, query
 * parameters, request body and reply schemas of every route that follows a documented method.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GEMINI_ROUTES, VERTEX_ROUTES } from "../../src/testing/index.js";

interface DiscoveryMethod {
  id: string;
  httpMethod: string;
  path: string;
  parameters?: Record<
    string,
    { location: string; type: string; format?: string; pattern?: string }
  >;
  request?: { $ref: string };
  response?: { $ref: string };
}

function methods(file: string): Map<string, DiscoveryMethod> {
  const document = JSON.parse(readFileSync(file, "utf8")) as { resources: Record<string, unknown> };
  const out = new Map<string, DiscoveryMethod>();
  const walk = (
    resources: Record<
      string,
      { methods?: Record<string, DiscoveryMethod>; resources?: Record<string, unknown> }
    >,
  ) => {
    for (const resource of Object.values(resources)) {
      for (const method of Object.values(resource.methods ?? {})) out.set(method.id, method);
      walk((resource.resources ?? {}) as typeof resources);
    }
  };
  walk(document.resources as Parameters<typeof walk>[0]);
  return out;
}

/** A concrete path for a discovery path template (`v1beta/{+name}` with name `^tunedModels/[^/]+$`). */
function samplePath(method: DiscoveryMethod): string {
  return method.path.replace(/\{\+?(\w+)\}/g, (_match, name: string) => {
    const pattern = method.parameters?.[name]?.pattern ?? "^x$";
    return pattern.replace(/^\^|\$$/g, "").replaceAll("[^/]+", "x");
  });
}

const gemini = fileURLToPath(
  new URL("../fixtures/discovery/generativelanguage-v1beta.discovery.json", import.meta.url),
);
const aiplatform = fileURLToPath(
  new URL("../../../shared/spec/aiplatform-v1.discovery.json", import.meta.url),
);

function check(
  routes: ReadonlyArray<{
    name: string;
    method: string;
    pattern: RegExp;
    discoveryId?: string;
    query?: Record<string, { type: string; format?: string }>;
    body?: { schema: string };
    response: string;
  }>,
  documented: Map<string, DiscoveryMethod>,
  schemaOf: (ref: string) => string,
): number {
  let checked = 0;
  for (const route of routes) {
    if (route.discoveryId === undefined) continue;
    const method = documented.get(route.discoveryId);
    expect(method, route.discoveryId).toBeDefined();
    if (!method) continue;
    expect(route.method, route.name).toBe(method.httpMethod);
    const path = samplePath(method).replace(/^v1(beta1?)?\//, "");
    expect(route.pattern.test(path), `${route.name} matches ${path}`).toBe(true);
    const query = Object.entries(method.parameters ?? {})
      .filter(([, p]) => p.location === "query")
      .map(([name, p]) => [name, { type: p.type, ...(p.format ? { format: p.format } : {}) }]);
    expect(route.query ?? {}, route.name).toEqual(Object.fromEntries(query));
    expect(route.body?.schema, route.name).toBe(
      method.request ? schemaOf(method.request.$ref) : undefined,
    );
    expect(route.response, route.name).toBe(schemaOf(method.response?.$ref ?? "Empty"));
    checked++;
  }
  return checked;
}

describe("route tables against the discovery documents", () => {
  it("Gemini API (generativelanguage v1beta)", () => {
    const count = check(GEMINI_ROUTES, methods(gemini), (ref) => ref);
    expect(count).toBe(GEMINI_ROUTES.filter((route) => route.discoveryId).length);
    expect(count).toBeGreaterThan(18);
  });

  it.skipIf(!existsSync(aiplatform))(
    "Vertex AI (aiplatform v1; needs ../shared/spec/aiplatform-v1.discovery.json)",
    () => {
      const count = check(VERTEX_ROUTES, methods(aiplatform), (ref) => ref);
      expect(count).toBe(7);
    },
  );
});
