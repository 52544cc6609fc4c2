// One user-assigned managed identity for the function app. It is used for host storage,
// the Flex deployment container, Application Insights ingestion (Entra) and as the
// PostgreSQL login role (Entra authentication; the role is created by the post-provision hook).

@description('Name of the user-assigned managed identity; it is also the PostgreSQL role name of the app.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
