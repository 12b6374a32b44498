import DistillJSON

/// `distilld/status`: the daemon's process, sessions and memory at a glance.
public struct StatusRequest: RequestType {
    public static let method = "distilld/status"
    public static let keys: Set<String> = []
    public static let fallbackOrdering = Ordering.read

    public init(params: Field) throws {}
    public var ordering: Ordering { .read }

    public struct Response: ResponseType {
        public var serverName: String
        public var serverVersion: String
        public var pid: Int
        public var uptimeSeconds: Double
        public var sessions: Int
        public var requestsServed: Int
        public var residentBytes: Int
        public var budgetBytes: Int?
        public var entriesResidentBytes: Int
        public var entriesMappedBytes: Int
        public var teachers: Int
        public var datasets: Int
        /// Live JSON wrappers and jansson allocations: a leak shows as a count that keeps rising.
        public var liveJSONValues: Int
        public var liveJSONAllocations: Int

        public init(
            serverName: String, serverVersion: String, pid: Int, uptimeSeconds: Double, sessions: Int, requestsServed: Int,
            residentBytes: Int, budgetBytes: Int?, entriesResidentBytes: Int, entriesMappedBytes: Int, teachers: Int,
            datasets: Int, liveJSONValues: Int, liveJSONAllocations: Int
        ) {
            self.serverName = serverName
            self.serverVersion = serverVersion
            self.pid = pid
            self.uptimeSeconds = uptimeSeconds
            self.sessions = sessions
            self.requestsServed = requestsServed
            self.residentBytes = residentBytes
            self.budgetBytes = budgetBytes
            self.entriesResidentBytes = entriesResidentBytes
            self.entriesMappedBytes = entriesMappedBytes
            self.teachers = teachers
            self.datasets = datasets
            self.liveJSONValues = liveJSONValues
            self.liveJSONAllocations = liveJSONAllocations
        }

        public var json: JSON {
            [
                "serverInfo": ["name": JSON(serverName), "version": JSON(serverVersion)],
                "pid": JSON(pid),
                "uptimeSeconds": JSON(uptimeSeconds),
                "sessions": JSON(sessions),
                "requestsServed": JSON(requestsServed),
                "memory": [
                    "residentBytes": JSON(residentBytes),
                    "budgetBytes": budgetBytes.map { JSON($0) } ?? .null,
                    "entriesResidentBytes": JSON(entriesResidentBytes),
                    "entriesMappedBytes": JSON(entriesMappedBytes),
                ],
                "teachers": JSON(teachers),
                "datasets": JSON(datasets),
                "json": ["liveValues": JSON(liveJSONValues), "liveAllocations": JSON(liveJSONAllocations)],
            ]
        }
    }
}
