// MCP Registry backend: Azure Functions (Flex Consumption, Python 3.11) + PostgreSQL Flexible
// Server (Entra-only) + Application Insights + one user-assigned managed identity.
// Deploy with `azd up` (see README.md, Deploy to Azure). Plain resources only (no registry modules), so
// checkov and tests/test_infra.py can read every resource.
targetScope = 'subscription'

@description('azd environment name; used for the resource group name and the resource token.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Azure region for all resources (must offer Flex Consumption and PostgreSQL Flexible Server).')
@minLength(1)
param location string

@description('Object id of the deploying principal (azd sets AZURE_PRINCIPAL_ID). It becomes the PostgreSQL Entra administrator unless postgresAdminPrincipalId is given.')
param principalId string = ''

@description('Object id of the PostgreSQL Entra administrator (user, group or service principal). Empty = principalId.')
param postgresAdminPrincipalId string = ''

@description('Name of the PostgreSQL Entra administrator as PostgreSQL sees it: the user principal name of a user, or the display name of a group or service principal.')
param postgresAdminPrincipalName string

@description('Type of the PostgreSQL Entra administrator.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param postgresAdminPrincipalType string = 'User'

@description('Entra tenant of the API app registration. Empty = the tenant of the subscription.')
param entraTenantId string = ''

@description('Application (client) id of the API app registration (EasyAuth client id and token audience).')
@minLength(36)
@maxLength(36)
param entraClientId string

@description('Name of the delegated scope the API exposes (the frontend requests api://<client id>/<scope>).')
param entraApiScopeName string = 'access_as_user'

@description('App role value that makes a user an admin (must exist on the API app registration).')
param entraAdminRole string = 'Admin'

@description('Optional object id of an Entra group whose members are admins; empty for none.')
param entraAdminGroupId string = ''

@description('Serve the anonymous MCP Registry v0.1 routes (GitHub Copilot / VS Code). When false, corsAllowedOrigins may be narrowed to the frontend origins.')
param mcpRegistryEnabled bool = true

@description('Reverse-DNS namespace of derived MCP server names (<namespace>/<slug>), e.g. com.contoso.mcp. Names are frozen once approved, so choose it before the first approval.')
@minLength(1)
@maxLength(100)
param mcpServerNamespace string = 'com.example.mcp'

@description('Platform CORS origins. Default [\'*\'] (bearer-token API, credentials never allowed): serves the SPA and the MCP Registry clients. Narrow to the frontend origins only when mcpRegistryEnabled is false.')
param corsAllowedOrigins array = [
  '*'
]

@description('Flex Consumption instance memory in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Maximum on-demand Flex instances (always-ready instances come on top). 40 is the lowest value Flex accepts in every region (lower values are a regional preview). Part of the connection budget below.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Concurrent HTTP requests per instance (the async handlers share the connection pool).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Always-ready instances for HTTP (0 = scale from zero; 1 removes cold starts at a standing cost).')
@minValue(0)
@maxValue(10)
param alwaysReadyInstanceCount int = 0

@description('Minimum PostgreSQL connections per instance pool.')
@minValue(0)
@maxValue(100)
param dbPoolMinSize int = 0

@description('Maximum PostgreSQL connections per instance pool. Part of the connection budget below.')
@minValue(1)
@maxValue(100)
param dbPoolMaxSize int = 4

@description('PostgreSQL major version (the versions the Microsoft.DBforPostgreSQL API version in modules/postgres.bicep accepts).')
@allowed([
  '14'
  '15'
  '16'
  '17'
])
param postgresVersion string = '16'

@description('PostgreSQL compute SKU. Default Standard_B2s (Burstable, max_connections 429: room for the connection budget below); use e.g. Standard_D2ds_v5 (GeneralPurpose, built-in PgBouncer) in production. Standard_B1ms (max_connections 50) is too small for 40 instances.')
param postgresSkuName string = 'Standard_B2s'

@description('PostgreSQL compute tier matching postgresSkuName. PgBouncer is enabled for every tier except Burstable.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@description('PostgreSQL storage size in GiB (auto-grow is on).')
@minValue(32)
param postgresStorageSizeGB int = 32

@description('PostgreSQL backup retention in days.')
@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 7

@description('Geo-redundant PostgreSQL backups (only settable at creation).')
@allowed([
  'Enabled'
  'Disabled'
])
param postgresGeoRedundantBackup string = 'Disabled'

@description('Zone-redundant high availability for PostgreSQL (not on Burstable).')
param postgresZoneRedundantHa bool = false

@description('Name of the application database.')
param postgresDatabaseName string = 'mcpregistry'

@description('Firewall rules for the PostgreSQL public endpoint when privateNetworking is false: [{ name, startIpAddress, endIpAddress }]. The post-provision hook opens a temporary rule for the deploying machine itself.')
param postgresFirewallRules array = []

@description('Private networking (default true in main.parameters.json): Flex VNet integration, private endpoints for PostgreSQL and blob storage, public network access disabled on both. Needs the Microsoft.App resource provider registered. When false, PostgreSQL keeps a public endpoint with the 0.0.0.0 "allow Azure services" rule (Flex has no fixed outbound IPs; the rule admits any Azure address, other tenants included, behind Entra-only sign-in and TLS).')
param privateNetworking bool = true

@description('Tags applied to every resource.')
param tags object = {}

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, {
  'azd-env-name': environmentName
})
var tenantId = empty(entraTenantId) ? tenant().tenantId : entraTenantId
var adminObjectId = empty(postgresAdminPrincipalId) ? principalId : postgresAdminPrincipalId
var pgBouncerEnabled = postgresSkuTier != 'Burstable'

// PostgreSQL connection budget: computed here and nowhere else (tests/test_infra.py checks it against the
// server's max_connections minus the 15 Azure reserves). Flex's maximumInstanceCount bounds the on-demand
// instances; always-ready instances come on top. Each instance runs one Python worker with one pool of at
// most dbPoolMaxSize connections.
var appInstancesAtMost = maximumInstanceCount + alwaysReadyInstanceCount
var appClientConnectionsAtMost = appInstancesAtMost * dbPoolMaxSize
// Behind the built-in PgBouncer (transaction pooling) the clients share pgBouncerPoolSize server connections
// (pgbouncer.default_pool_size, for the app's one user/database pair); its max_client_conn (default 5000)
// bounds the client side. Without PgBouncer every client connection is a server connection.
var pgBouncerPoolSize = 50
var appServerConnectionsAtMost = pgBouncerEnabled ? pgBouncerPoolSize : appClientConnectionsAtMost
// Direct connections on port 5432 beside the app: the post-provision hook and an operator's psql.
var adminConnectionsAtMost = 5
var postgresConnectionBudget = appServerConnectionsAtMost + adminConnectionsAtMost
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: allTags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: allTags
    deploymentContainerName: deploymentContainerName
    privateNetworking: privateNetworking
    privateEndpointSubnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    blobPrivateDnsZoneId: privateNetworking ? network.outputs.blobPrivateDnsZoneId : ''
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: allTags
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    name: 'psql-${resourceToken}'
    location: location
    tags: allTags
    version: postgresVersion
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    zoneRedundantHa: postgresZoneRedundantHa
    databaseName: postgresDatabaseName
    pgBouncerEnabled: pgBouncerEnabled
    pgBouncerPoolSize: pgBouncerPoolSize
    firewallRules: postgresFirewallRules
    privateNetworking: privateNetworking
    privateEndpointSubnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    privateDnsZoneId: privateNetworking ? network.outputs.postgresPrivateDnsZoneId : ''
    adminPrincipalId: adminObjectId
    adminPrincipalName: postgresAdminPrincipalName
    adminPrincipalType: postgresAdminPrincipalType
    tenantId: tenant().tenantId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: allTags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityName: identity.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    pythonVersion: '3.11'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    alwaysReadyInstanceCount: alwaysReadyInstanceCount
    corsAllowedOrigins: corsAllowedOrigins
    entraTenantId: tenantId
    entraClientId: entraClientId
    entraAdminRole: entraAdminRole
    entraAdminGroupId: entraAdminGroupId
    mcpRegistryEnabled: mcpRegistryEnabled
    mcpServerNamespace: mcpServerNamespace
    postgresHost: postgres.outputs.fqdn
    postgresPort: postgres.outputs.port
    postgresDatabaseName: postgres.outputs.databaseName
    pgBouncerEnabled: pgBouncerEnabled
    dbPoolMinSize: dbPoolMinSize
    dbPoolMaxSize: dbPoolMaxSize
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
  dependsOn: [
    rbac
  ]
}

// azd stores these outputs in the environment (.azure/<env>/.env); the hook and the frontend read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output API_BASE_URL string = functionApp.outputs.url
output MCP_REGISTRY_URL string = functionApp.outputs.url
output ENTRA_TENANT_ID string = tenantId
output ENTRA_CLIENT_ID string = entraClientId
output ENTRA_API_SCOPE string = 'api://${entraClientId}/${entraApiScopeName}'
output APP_IDENTITY_NAME string = identity.outputs.name
output APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
@description('Object id of the app identity: the post-provision hook binds the app\'s database role to it.')
output APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output POSTGRES_SERVER_NAME string = postgres.outputs.name
output POSTGRES_HOST string = postgres.outputs.fqdn
output POSTGRES_DATABASE string = postgres.outputs.databaseName
output POSTGRES_ADMIN_NAME string = postgres.outputs.adminPrincipalName
output POSTGRES_PGBOUNCER_ENABLED bool = pgBouncerEnabled
@description('Server connections the deployment can use at most (app + admin); must stay below max_connections - 15.')
output POSTGRES_CONNECTION_BUDGET int = postgresConnectionBudget

@description('Namespace of derived MCP server names; the post-provision migration backfills with it.')
output MCP_SERVER_NAMESPACE string = mcpServerNamespace
