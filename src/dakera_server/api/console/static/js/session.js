// Who is signed in, and what that key may do. The scope each route needs is read from the
// server's own OpenAPI document (`x-dakera-scope`, written there from the route declarations),
// so the console keeps no second copy of the scope table: a control is drawn only when the
// key's scope, and its namespace grants, would let the call through.

import { call, storeKey } from "./api.js";

const RANKS = { public: 0, read: 1, write: 2, admin: 3, super_admin: 4 };

export const session = { who: null, routes: new Map() };

function routeKey(method, template) {
  return `${method.toUpperCase()} ${template}`;
}

/** Sign in: check the key with whoami, then learn the route table. Rejects with ApiError. */
export async function signIn(key) {
  // Both at once (one round trip less before the first page); either fails on a bad key.
  const [who, document] = await Promise.all([
    call("GET", "/v1/auth/whoami", { key: key || null }),
    call("GET", "/openapi.json", { key: key || null }),
  ]);
  storeKey(key || null);
  const routes = new Map();
  for (const [path, operations] of Object.entries(document.paths || {})) {
    for (const [method, operation] of Object.entries(operations)) {
      routes.set(routeKey(method, path), {
        scope: operation["x-dakera-scope"] || "super_admin",
        unrestricted: Boolean(operation["x-dakera-unrestricted"]),
      });
    }
  }
  session.who = who;
  session.routes = routes;
  return who;
}

export function signOut() {
  storeKey(null);
  session.who = null;
  session.routes = new Map();
}

/** Whether the server serves `method template` at all (e.g. the analytics routes). */
export function serves(method, template) {
  return session.routes.has(routeKey(method, template));
}

function grants(namespace) {
  const held = session.who && session.who.namespaces;
  if (held === null || held === undefined || namespace === undefined) return true;
  return held.some((grant) =>
    grant === "*" || grant === namespace || (grant.endsWith("*") && namespace.startsWith(grant.slice(0, -1))),
  );
}

/**
 * Whether the signed-in key may call `method template` (on `namespace`, when the route acts on
 * one): its scope reaches the route's, it is unrestricted where the route needs that, and one
 * of its grants covers the namespace.
 */
export function can(method, template, namespace) {
  const who = session.who;
  const route = session.routes.get(routeKey(method, template));
  if (!who || !route) return false;
  if ((RANKS[who.scope] ?? -1) < (RANKS[route.scope] ?? 99)) return false;
  if (route.unrestricted && !who.unrestricted) return false;
  return grants(namespace);
}

export function agentNamespace(agentId) {
  return `_dakera_agent_${agentId}`;
}
