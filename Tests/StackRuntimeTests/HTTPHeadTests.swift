import StackRuntime
import Testing

@Suite struct HTTPHeadTests {
    func request(_ text: String) -> HTTPHead.Request? {
        Array(text.utf8).withUnsafeBytes { HTTPHead.request($0) }
    }

    func response(_ text: String) -> HTTPHead.Response? {
        Array(text.utf8).withUnsafeBytes { HTTPHead.response($0) }
    }

    func path(_ text: String) -> String {
        guard let parsed = request(text) else { return "<incomplete>" }
        return String(decoding: Array(text.utf8)[parsed.path], as: UTF8.self)
    }

    @Test func headerEndIsFoundAtEveryAlignment() {
        for prefix in 0..<9 {
            let text = String(repeating: "a", count: prefix) + "\r\n\r\nrest"
            let end = Array(text.utf8).withUnsafeBytes { HTTPHead.end(in: $0) }
            #expect(end == prefix)
        }
        #expect(Array("a\r\n\rx\r\n".utf8).withUnsafeBytes { HTTPHead.end(in: $0) } == nil)
        #expect(Array("\r\r\n\r\n".utf8).withUnsafeBytes { HTTPHead.end(in: $0) } == 1)
        #expect(Array("\r\n\r".utf8).withUnsafeBytes { HTTPHead.end(in: $0) } == nil)
    }

    @Test func requestLineAndConnectionHeader() throws {
        let get = try #require(request("GET /64.bin?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /next"))
        #expect(get.method == .get && get.wellFormed && get.keepAlive)
        #expect(get.length == 37)
        #expect(path("GET /64.bin?x=1 HTTP/1.1\r\nHost: a\r\n\r\n") == "/64.bin")
        #expect(request("HEAD / HTTP/1.1\r\nConnection: Close\r\n\r\n")?.keepAlive == false)
        #expect(request("HEAD / HTTP/1.1\r\nconnection: close\r\n\r\n")?.method == .head)
        #expect(request("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(request("GET / HTTP/1.0\r\nCONNECTION: Keep-Alive\r\n\r\n")?.keepAlive == true)
        #expect(request("POST / HTTP/1.1\r\n\r\n")?.method == .other)
        #expect(request("GET /\r\n\r\n")?.wellFormed == false)
        #expect(request("GET / HTTP/1.1\r\nHost: a\r\n") == nil)
    }

    @Test func responseStatusAndLength() throws {
        let ok = try #require(response("HTTP/1.1 200 OK\r\nContent-Length:  64 \r\n\r\nbody"))
        #expect(ok.status == 200 && ok.contentLength == 64 && ok.length == 41)
        #expect(response("HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\n")?.status == 404)
        #expect(response("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?.contentLength == nil)
        #expect(response("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n")?.contentLength == nil)
        #expect(response("HTTP/1.1 2\r\n\r\n")?.status == 0)
        #expect(response("HTTP/1.1 200 OK\r\n") == nil)
    }
}
