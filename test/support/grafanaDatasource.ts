/**
 * What Grafana stores and sends for a `grafana.oss.DataSource`, modelled on the sources, so a
 * test can read a datasource's inputs as Grafana ends up using them:
 *
 * - The provider (grafana/terraform-provider-grafana, internal/resources/grafana/resource_data_source.go):
 *   `json_data_encoded` and `secure_json_data_encoded` are decoded into jsonData and
 *   secureJsonData; their validators refuse any `httpHeaderName…` / `httpHeaderValue…` key
 *   ("a reserved key … use the http_headers attribute instead"); each `http_headers` entry
 *   becomes jsonData.httpHeaderName<i> with secureJsonData.httpHeaderValue<i>, i counting from 1
 *   in the map's iteration order (a Go map: any order).
 * - Grafana (pkg/services/datasources/service/datasource.go): `getCustomHeaders` reads
 *   httpHeaderName1, 2, … and stops at the first missing name; `httpClientOptions` sends basic
 *   auth from basicAuth/basicAuthUser with secureJsonData.basicAuthPassword.
 */

/** A datasource's inputs as the mocks record them (secrets unwrapped). */
export interface DatasourceInputs {
    readonly basicAuthEnabled?: boolean;
    readonly basicAuthUsername?: string;
    readonly jsonDataEncoded?: string;
    readonly secureJsonDataEncoded?: string;
    readonly httpHeaders?: Readonly<Record<string, string>>;
}

export interface StoredDatasource {
    readonly basicAuth: boolean;
    readonly basicAuthUser: string;
    readonly jsonData: Record<string, unknown>;
    readonly secureJsonData: Record<string, string>;
}

/** What the provider sends Grafana; `headerOrder` stands for the Go map's iteration order. Throws where the provider refuses. */
export function storedByProvider(inputs: DatasourceInputs, headerOrder: "as given" | "reversed" = "as given"): StoredDatasource {
    if (inputs.jsonDataEncoded?.includes("httpHeaderName")) throw new Error("httpHeaderName{num} is a reserved key and cannot be used in JSON data");
    if (inputs.secureJsonDataEncoded?.includes("httpHeaderValue")) throw new Error("httpHeaderValue{num} is a reserved key and cannot be used in JSON data");
    const jsonData = JSON.parse(inputs.jsonDataEncoded ?? "{}") as Record<string, unknown>;
    const secureJsonData = JSON.parse(inputs.secureJsonDataEncoded ?? "{}") as Record<string, string>;
    const headers = Object.entries(inputs.httpHeaders ?? {});
    if (headerOrder === "reversed") headers.reverse();
    headers.forEach(([name, value], index) => {
        jsonData[`httpHeaderName${index + 1}`] = name;
        secureJsonData[`httpHeaderValue${index + 1}`] = value;
    });
    return { basicAuth: inputs.basicAuthEnabled ?? false, basicAuthUser: inputs.basicAuthUsername ?? "", jsonData, secureJsonData };
}

/** The headers Grafana adds to each request to Loki: its custom headers, and basic auth. */
export function headersGrafanaSends(stored: StoredDatasource): Record<string, string> {
    const headers: Record<string, string> = {};
    for (let index = 1; ; index++) {
        const name = stored.jsonData[`httpHeaderName${index}`];
        if (typeof name !== "string" || name === "") break;
        const value = stored.secureJsonData[`httpHeaderValue${index}`];
        if (value !== undefined) headers[name] = value;
    }
    if (stored.basicAuth) {
        headers.Authorization = `Basic ${Buffer.from(`${stored.basicAuthUser}:${stored.secureJsonData.basicAuthPassword ?? ""}`).toString("base64")}`;
    }
    return headers;
}
