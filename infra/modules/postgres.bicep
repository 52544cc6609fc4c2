// Azure Database for PostgreSQL Flexible Server, Entra-only (passwordless) authentication.
// Child order (each step waits for the previous one; the server rejects parallel writes with
// ServerIsBusy): database -> firewall rules (@batchSize(1)) -> server parameters (@batchSize(1))
// -> Entra administrator (separate resource, after the configurations).
// The app's own database role (the managed identity) is data-plane SQL
// (pgaadauth_create_principal + GRANTs) and is created by infra/hooks/postprovision.sh.

@description('Name of the PostgreSQL flexible server.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the server.')
param tags object = {}

@description('PostgreSQL major version.')
@allowed([
  '14'
  '15'
  '16'
  '17'
])
param version string = '16'

@description('Compute SKU name, e.g. Standard_B1ms (Burstable, dev) or Standard_D2ds_v5 (GeneralPurpose, production).')
param skuName string = 'Standard_B1ms'

@description('Compute tier matching skuName.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'

@description('Initial storage size in GiB (auto-grow is on).')
@minValue(32)
param storageSizeGB int = 32

@description('Backup retention in days (7-35).')
@minValue(7)
@maxValue(35)
param backupRetentionDays int = 7

@description('Geo-redundant backups (can only be chosen when the server is created).')
@allowed([
  'Enabled'
  'Disabled'
])
param geoRedundantBackup string = 'Disabled'

@description('Zone-redundant high availability (not available on Burstable; chosen at creation).')
param zoneRedundantHa bool = false

@description('Name of the application database.')
param databaseName string

@description('Enable the built-in PgBouncer (port 6432). Only General Purpose and Memory Optimized tiers support it.')
param pgBouncerEnabled bool = false

@description('Firewall rules for the public endpoint: array of { name, startIpAddress, endIpAddress }. Empty by default.')
param firewallRules array = []

@description('Add the 0.0.0.0 rule that admits every Azure-internal address (including other tenants). Off by default; prefer privateEndpointSubnetId.')
param allowAzureServices bool = false

@description('Subnet for a private endpoint to the server; empty for none.')
param privateEndpointSubnetId string = ''

@description('Resource id of the privatelink.postgres.database.azure.com private DNS zone; used with privateEndpointSubnetId.')
param privateDnsZoneId string = ''

@description('Object id of the Entra principal that administers the server (runs migrations and creates the app role).')
param adminPrincipalId string

@description('Name of that principal as PostgreSQL sees it (user principal name, group or service principal display name).')
param adminPrincipalName string

@description('Type of the Entra administrator principal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param adminPrincipalType string = 'User'

@description('Entra tenant of the administrator.')
param tenantId string

// Every extension a migration in sql/ creates must be allow-listed here (tests/test_infra.py checks it).
var allowedExtensions = 'PG_TRGM'

var baseServerParameters = [
  {
    name: 'azure.extensions'
    value: allowedExtensions
  }
  {
    name: 'require_secure_transport'
    value: 'on'
  }
]

var pgBouncerServerParameters = [
  {
    name: 'pgbouncer.enabled'
    value: 'true'
  }
]

var serverParameters = pgBouncerEnabled ? concat(baseServerParameters, pgBouncerServerParameters) : baseServerParameters

var azureServicesRule = [
  {
    name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
]

var allFirewallRules = allowAzureServices ? concat(firewallRules, azureServicesRule) : firewallRules

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: tenantId
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup
    }
    highAvailability: {
      mode: zoneRedundantHa ? 'ZoneRedundant' : 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

@batchSize(1)
resource firewall 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = [for rule in allFirewallRules: {
  parent: server
  name: rule.name
  properties: {
    startIpAddress: rule.startIpAddress
    endIpAddress: rule.endIpAddress
  }
  dependsOn: [
    database
  ]
}]

@batchSize(1)
resource configurations 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = [for parameter in serverParameters: {
  parent: server
  name: parameter.name
  properties: {
    value: parameter.value
    source: 'user-override'
  }
  dependsOn: [
    database
    firewall
  ]
}]

// A separate resource (not nested), created after the configurations: the server must be idle.
resource administrator 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: adminPrincipalId
  properties: {
    principalType: adminPrincipalType
    principalName: adminPrincipalName
    tenantId: tenantId
  }
  dependsOn: [
    configurations
  ]
}

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = if (!empty(privateEndpointSubnetId)) {
  name: 'pe-${name}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'postgres'
        properties: {
          privateLinkServiceId: server.id
          groupIds: [
            'postgresqlServer'
          ]
        }
      }
    ]
  }
  dependsOn: [
    administrator
  ]
}

resource privateEndpointDns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = if (!empty(privateEndpointSubnetId)) {
  parent: privateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'postgres'
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

output name string = server.name
output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
output port int = pgBouncerEnabled ? 6432 : 5432
output adminPrincipalName string = adminPrincipalName
