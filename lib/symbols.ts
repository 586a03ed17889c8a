// Private request and route state hangs on these symbols, never on `request._foo`.
export const kBodyState = Symbol('nexure.bodyState')
export const kRouteOptions = Symbol('nexure.routeOptions')
export const kUploadState = Symbol('nexure.uploadState')
export const kUploadRouteOptions = Symbol('nexure.uploadRouteOptions')
export const kReply = Symbol('nexure.reply')
