// A partner program written against the generated types (src/schema.d.ts, made by
// `npm run generate` from Passerelle's OpenAPI document). It is only type-checked
// (`make client` runs `tsc --noEmit`): if a route, parameter or field it uses were missing,
// renamed or untyped in the document, tsc would fail.
import createClient from "openapi-fetch";
import type { components, paths } from "./src/schema";

export type Brand = components["schemas"]["BrandRead"];
export type BrandPage = components["schemas"]["Page_BrandRead_"];

// (c) Pagination parameters read from the document, not written by hand.
export type BrandListQuery = NonNullable<paths["/v1/brands"]["get"]["parameters"]["query"]>;
export type BrandListLimit = NonNullable<BrandListQuery["limit"]>; // number, 1..200 on the server
export type BrandListCursor = BrandListQuery["cursor"]; // string | null (opaque)

const PAGE_SIZE: BrandListLimit = 100;

// Never called: each marked line must be a type error, so these fail if the document's types
// were loose (`any`, `string` for everything) as well as if they were missing.
export function compileTimeChecks(brand: Brand): void {
  // @ts-expect-error limit is an integer in the document, not a string
  const limit: BrandListLimit = "100";
  // @ts-expect-error status is an enum: active | archived | all
  const status: BrandListQuery["status"] = "deleted";
  // @ts-expect-error a brand has no `title`: the field is `name`
  const title: unknown = brand.title;
  void [limit, status, title];
}

export function passerelle(baseUrl: string, accessToken: string) {
  return createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${accessToken}` },
  });
}

// (b) Every brand the token can see, page by page.
export async function listBrands(baseUrl: string, accessToken: string): Promise<Brand[]> {
  const client = passerelle(baseUrl, accessToken);
  const brands: Brand[] = [];
  let cursor: BrandListCursor = null;
  do {
    const { data, error, response } = await client.GET("/v1/brands", {
      params: { query: { limit: PAGE_SIZE, cursor, status: "active", sort: "name" } },
    });
    if (error !== undefined) {
      // error is the RFC 9457 problem document
      throw new Error(`GET /v1/brands: ${response.status} ${error.title}: ${error.detail ?? ""}`);
    }
    const page: BrandPage = data;
    brands.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return brands;
}

export async function printBrands(baseUrl: string, accessToken: string): Promise<void> {
  for (const brand of await listBrands(baseUrl, accessToken)) {
    const id: string = brand.id;
    const name: string = brand.name;
    const status: "active" | "archived" = brand.status;
    console.log(`${id}\t${name}\t${status}\t(client ${brand.client_id}, v${brand.version})`);
  }
}
