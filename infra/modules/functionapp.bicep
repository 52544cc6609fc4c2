// Flex Consumption (FC1, Linux) function app: runtime python 3.11, identity-based host storage,
// identity-authenticated deployment container, EasyAuth (authsettingsV2, Entra, bearer-only API),
// platform CORS, app settings. Flex takes the runtime, scale and deployment settings from
// functionAppConfig, so FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE and FUNCTIONS_WORKER_PROCESS_COUNT are deliberately absent, and
// siteConfig is kept minimal (properties Flex does not support are left out).

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('azd service name the app is tagged with (azure.yaml service).')
param serviceName string = 'api'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Name of the user-assigned managed identity (the PostgreSQL login role of the app).')
param identityName string

@description('Blob endpoint of the host storage account, e.g. https://<account>.blob.core.windows.net/.')
param storageBlobEndpoint string

@description('URL of the blob container holding the deployment package.')
param deploymentContainerUrl string

@description('Application Insights connection string (not a secret: ingestion requires Entra because local auth is off).')
param applicationInsightsConnectionString string

@description('Python version of the Flex runtime.')
@allowed([
  '3.11'
])
param pythonVersion string = '3.11'

@description('Instance memory in MB (Flex sizes).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Upper bound of on-demand Flex instances (always-ready instances come on top). Part of the PostgreSQL connection budget (see main.bicep).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Concurrent HTTP requests per instance (Python default on Flex is 1; the handlers are async).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int

@description('Always-ready instances for the http group (0 = none; they remove cold starts but are billed while idle).')
@minValue(0)
param alwaysReadyInstanceCount int

@description('Origins allowed by platform CORS. [\'*\'] (default) serves the SPA and the anonymous MCP Registry routes; credentials are never allowed.')
param corsAllowedOrigins array

@description('Entra tenant id (issuer) of the API.')
param entraTenantId string

@description('Application (client) id of the API app registration (audience).')
param entraClientId string

@description('App role value that makes a user an admin.')
param entraAdminRole string

@description('Object id of an Entra group whose members are admins; empty for none.')
param entraAdminGroupId string

@description('Serve the anonymous MCP Registry v0.1 routes (and exclude them from EasyAuth).')
param mcpRegistryEnabled bool

@description('Reverse-DNS namespace of derived MCP server names.')
param mcpServerNamespace string

@description('PostgreSQL server FQDN.')
param postgresHost string

@description('PostgreSQL port the app connects to (6432 when PgBouncer is used).')
param postgresPort int

@description('Name of the application database.')
param postgresDatabaseName string

@description('True when the app connects through the built-in PgBouncer (transaction pooling).')
param pgBouncerEnabled bool

@description('Minimum connections per pool (per instance).')
@minValue(0)
param dbPoolMinSize int

@description('Maximum connections per pool (per instance); instances x this must fit the server.')
@minValue(1)
param dbPoolMaxSize int

@description('Subnet for Flex VNet integration (delegated to Microsoft.App/environments); empty for none.')
param virtualNetworkSubnetId string = ''

@description('Resource id of the Log Analytics workspace that receives the function app\'s platform logs and metrics.')
param logAnalyticsWorkspaceId string

// Paths EasyAuth lets through without a token (request paths, so they carry the /api prefix).
var publicPaths = [
  '/api/health'
  '/api/openapi.json'
  '/api/docs'
  '/api/docs/*'
]

// Anonymous MCP Registry routes read by GitHub Copilot / VS Code.
var mcpRegistryPaths = [
  '/api/v0.1/servers'
  '/api/v0.1/servers/*'
]

var excludedPaths = mcpRegistryEnabled ? concat(publicPaths, mcpRegistryPaths) : publicPaths

var alwaysReady = (alwaysReadyInstanceCount > 0) ? [
  {
    name: 'http'
    instanceCount: alwaysReadyInstanceCount
  }
] : []

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex needs a supporting region and at least 2 always-ready instances (standing cost); a production deployment can turn it on in the plan.
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-11-01' = {
  // checkov:skip=CKV_AZURE_17: a public bearer-token API for a browser SPA and Copilot clients; client certificates would lock those callers out.
  // checkov:skip=CKV_AZURE_78: FTP(S) does not exist on Flex Consumption and ftpsState is not a Flex property; FTP publishing is also disabled by basicPublishingCredentialsPolicies below.
  // checkov:skip=CKV_AZURE_212: failover instance counts do not apply to Flex Consumption (it scales per request); always-ready instances are a parameter.
  // checkov:skip=CKV_AZURE_213: Flex scales from zero per request, so health-check instance replacement adds nothing here; /api/health is for external probes.
  // checkov:skip=CKV_AZURE_57: platform CORS allows any origin on purpose: bearer tokens only, supportCredentials false, and the anonymous MCP Registry routes need Access-Control-Allow-Origin * (README.md, "CORS").
  // checkov:skip=CKV_AZURE_62: same CORS decision as CKV_AZURE_57 (this check reads allowedOrigins '*' as "accessible from all regions").
  // checkov:skip=CKV_AZURE_222: the API must be reachable from browsers and Copilot clients; access is controlled by EasyAuth plus in-app JWT validation.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      runtime: {
        name: 'python'
        version: pythonVersion
      }
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReady
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
    }
    siteConfig: {
      http20Enabled: true
      minTlsVersion: '1.2'
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
  }
}

// FTP and SCM basic-auth publishing off (azd deploys with an Entra token).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// EasyAuth for a bearer-only API: Entra provider, v2 issuer of the tenant, both audience forms
// (v2 tokens carry the client id, v1 tokens api://<client id>), 401 instead of a login redirect,
// token store off. The app validates the JWT itself as well (authoritative check).
resource authSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  // checkov:skip=CKV_AZURE_13: this check reads the authsettings (V1) shape ("enabled"); authsettingsV2 is enabled via platform.enabled (CKV_AZURE_56 covers it).
  // checkov:skip=CKV_AZURE_63: config-resource false positive: HTTP logging is a siteConfig setting, not part of authsettingsV2.
  // checkov:skip=CKV_AZURE_65: config-resource false positive: detailed error logging is not part of authsettingsV2.
  // checkov:skip=CKV_AZURE_66: config-resource false positive: failed request tracing is not part of authsettingsV2.
  // checkov:skip=CKV_AZURE_80: config-resource false positive: .NET version does not apply to a Python app.
  // checkov:skip=CKV_AZURE_88: config-resource false positive: Azure Files mounts are not part of authsettingsV2 (and not used).
  // checkov:skip=CKV_AZURE_222: config-resource false positive: public network access is a site property (see the site).
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
          clientId: entraClientId
        }
        login: {
          disableWWWAuthenticate: false
        }
        validation: {
          allowedAudiences: [
            entraClientId
            'api://${entraClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

// App settings. Everything the app reads is either set here or documented as optional
// (tests/test_infra.py keeps the list). No secrets: PostgreSQL uses a managed-identity token,
// storage and telemetry use the identity too.
resource appSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  // checkov:skip=CKV_AZURE_13: config-resource false positive: authentication is configured by the authsettingsV2 resource.
  // checkov:skip=CKV_AZURE_63: config-resource false positive: HTTP logging is not part of appsettings.
  // checkov:skip=CKV_AZURE_65: config-resource false positive: detailed error logging is not part of appsettings.
  // checkov:skip=CKV_AZURE_66: config-resource false positive: failed request tracing is not part of appsettings.
  // checkov:skip=CKV_AZURE_80: config-resource false positive: .NET version does not apply to a Python app.
  // checkov:skip=CKV_AZURE_88: config-resource false positive: Azure Files mounts are not used.
  // checkov:skip=CKV_AZURE_222: config-resource false positive: public network access is a site property (see the site).
  parent: site
  name: 'appsettings'
  properties: {
    // Host storage through the managed identity (no connection string, no key).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
    // Telemetry: the Python worker configures Azure Monitor itself (the app then does not);
    // ingestion authenticates with the identity because App Insights local auth is off.
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
    // azure-identity in the app picks this identity for PostgreSQL tokens.
    AZURE_CLIENT_ID: identityClientId
    // PostgreSQL: the identity's name is its database role; the password is an Entra token.
    DATABASE_URL: 'postgresql://${identityName}@${postgresHost}:${postgresPort}/${postgresDatabaseName}'
    DATABASE_AUTH: 'entra'
    DB_SSL: 'verify-full'
    DB_POOL_MIN_SIZE: string(dbPoolMinSize)
    DB_POOL_MAX_SIZE: string(dbPoolMaxSize)
    DB_STATEMENT_CACHE_SIZE: pgBouncerEnabled ? '0' : '100'
    // Entra ID (the app validates tokens itself; EasyAuth is the first gate).
    ENTRA_TENANT_ID: entraTenantId
    ENTRA_CLIENT_ID: entraClientId
    ENTRA_ADMIN_ROLE: entraAdminRole
    ENTRA_ADMIN_GROUP_ID: entraAdminGroupId
    MCP_REGISTRY_ENABLED: mcpRegistryEnabled ? 'true' : 'false'
    MCP_SERVER_NAMESPACE: mcpServerNamespace
  }
}

// Platform logs (FunctionAppLogs: host and function execution logs, plus the other categories the
// platform offers for the app) and metrics to Log Analytics, beside Application Insights' telemetry.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output url string = 'https://${site.properties.defaultHostName}/api'
