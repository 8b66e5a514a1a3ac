// (a) A partner's token: client credentials, form-encoded, as OAuth 2.0 asks
// (RFC 6749 §4.4). Rename to usage-token.ts once POST /v1/oauth/token is in the OpenAPI
// document; tsconfig.json includes every *.ts file here.
import createClient from "openapi-fetch";
import type { paths } from "./src/schema";
import { printBrands } from "./usage";

type TokenResponse =
  paths["/v1/oauth/token"]["post"]["responses"][200]["content"]["application/json"];

export interface PartnerCredentials {
  clientId: string;
  clientSecret: string;
  scope: string; // space-separated, e.g. "brands:read"
}

export async function clientCredentialsToken(
  baseUrl: string,
  credentials: PartnerCredentials,
): Promise<TokenResponse> {
  const client = createClient<paths>({ baseUrl });
  const { data, error, response } = await client.POST("/v1/oauth/token", {
    // openapi-fetch serializes the body with URLSearchParams for this content type
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: {
      grant_type: "client_credentials",
      client_id: credentials.clientId,
      client_secret: credentials.clientSecret,
      scope: credentials.scope,
    },
  });
  if (error !== undefined) {
    throw new Error(`POST /v1/oauth/token: ${response.status} ${JSON.stringify(error)}`);
  }
  const accessToken: string = data.access_token;
  const tokenType: "Bearer" = data.token_type;
  const expiresIn: number = data.expires_in;
  const scope: string = data.scope;
  void [accessToken, tokenType, expiresIn, scope];
  return data;
}

export async function main(baseUrl: string, credentials: PartnerCredentials): Promise<void> {
  const token = await clientCredentialsToken(baseUrl, credentials);
  await printBrands(baseUrl, token.access_token);
}
